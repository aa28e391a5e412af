"""The OpenLineage provider stays optional: the operators import and run without it.

One subprocess (a fresh interpreter, so nothing is imported yet): import Airflow, then our
modules, and note every module of OpenLineage that came with them; then hide OpenLineage (the
client, the provider's code, the compat facets), as if the extra were not installed, and run
both operators against the stand-in and moto. Airflow's own provider discovery imports each
installed provider's ``get_provider_info`` when Airflow starts; that is Airflow's business.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

OUR_MODULES = (
    "airflow_provider_qode.lineage",
    "airflow_provider_qode.operators.interviews",
    "airflow_provider_qode.operators.events",
)

SCRIPT = """
import importlib.abc, json, sys

import airflow.sdk

before = set(sys.modules)
for name in OUR_MODULES:
    __import__(name)
imported = sorted(m for m in set(sys.modules) - before if "openlineage" in m)


class _NoOpenLineage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("openlineage", "airflow.providers.common.compat.openlineage")) or (
            name.startswith("airflow.providers.openlineage.")
            and name != "airflow.providers.openlineage.get_provider_info"
        ):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoOpenLineage())
for name in [m for m in sys.modules if m.startswith("openlineage")]:
    del sys.modules[name]

from airflow_provider_qode.operators.events import QodeTerminalInterviewIdsOperator
from airflow_provider_qode.operators.interviews import QodeInterviewsToS3Operator

chunks = QodeTerminalInterviewIdsOperator(
    task_id="ids", s3_bucket=BUCKET, events_prefix="events/",
    window_start=DAY + "T00:00:00Z", window_end=DAY + "T23:59:59Z",
).execute({})
land = QodeInterviewsToS3Operator(
    task_id="land", interview_ids=IDS, s3_bucket=BUCKET, s3_prefix="lake"
)
summary = land.execute({})
try:
    land.get_openlineage_facets_on_complete(None)
    lineage = "built"
except ModuleNotFoundError as exc:
    lineage = exc.name
print(json.dumps({"imported": imported, "chunks": chunks, "summary": summary, "lineage": lineage}))
"""


def test_operators_import_and_run_without_openlineage(
    qode_conn_env, aws_conn_env, sandbox, sandbox_dataset, s3_client, s3_bucket
):
    day = sandbox_dataset.dates()[0]
    s3_client.put_object(
        Bucket=s3_bucket, Key="events/part-0.jsonl", Body=sandbox_dataset.events_jsonl(day)
    )
    ids = sandbox_dataset.ids[:6]
    values = f"OUR_MODULES, BUCKET, DAY, IDS = {OUR_MODULES!r}, {s3_bucket!r}, '{day}', {ids!r}\n"
    done = subprocess.run(
        [sys.executable, "-c", values + SCRIPT],
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    # Importing our modules imported nothing of OpenLineage.
    assert result["imported"] == []
    # Both operators ran with OpenLineage hidden.
    assert sum(len(c) for c in result["chunks"]) > 0
    summary = result["summary"]
    assert summary["requested"] == len(ids)
    assert summary["published"] + summary["quarantined"] == len(ids)
    # Only asking for lineage needs OpenLineage, and only the listener asks.
    assert result["lineage"].startswith(("airflow.providers", "openlineage"))
