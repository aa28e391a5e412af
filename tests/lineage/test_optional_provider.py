"""The OpenLineage provider stays optional: the operators import and run without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

OUR_MODULES = (
    "airflow_provider_qode.lineage",
    "airflow_provider_qode.operators.interviews",
    "airflow_provider_qode.operators.events",
)

# Airflow's provider discovery imports each installed provider's ``get_provider_info``; that is
# Airflow's business. Everything else of OpenLineage (the client, the provider's code, the
# compat facets) is hidden, as if the extra were not installed.
BLOCKER = """
import importlib.abc, sys

class _NoOpenLineage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        allowed = name in ("airflow.providers.openlineage",
                           "airflow.providers.openlineage.get_provider_info")
        hidden = (name == "openlineage" or name.startswith("openlineage.")
                  or name.startswith("airflow.providers.openlineage.")
                  or name.startswith("airflow.providers.common.compat.openlineage"))
        if hidden and not allowed:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoOpenLineage())
"""


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )


def test_importing_the_operators_imports_nothing_of_openlineage():
    done = _python(
        f"""
        import json, sys
        import airflow.sdk
        before = set(sys.modules)
        for name in {OUR_MODULES!r}:
            __import__(name)
        new = set(sys.modules) - before
        assert set({OUR_MODULES!r}) <= new
        print(json.dumps(sorted(m for m in new if "openlineage" in m)))
        """
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_operators_run_without_openlineage_installed(
    qode_conn_env, aws_conn_env, sandbox, sandbox_dataset, s3_client, s3_bucket
):
    day = sandbox_dataset.dates()[0]
    s3_client.put_object(
        Bucket=s3_bucket, Key="events/part-0.jsonl", Body=sandbox_dataset.events_jsonl(day)
    )
    ids = sandbox_dataset.ids[:6]
    done = _python(
        BLOCKER
        + f"""
import json
from airflow_provider_qode.operators.events import QodeTerminalInterviewIdsOperator
from airflow_provider_qode.operators.interviews import QodeInterviewsToS3Operator

chunks = QodeTerminalInterviewIdsOperator(
    task_id="ids", s3_bucket={s3_bucket!r}, events_prefix="events/",
    window_start="{day}T00:00:00Z", window_end="{day}T23:59:59Z",
).execute({{}})
land = QodeInterviewsToS3Operator(
    task_id="land", interview_ids={ids!r}, s3_bucket={s3_bucket!r}, s3_prefix="lake"
)
summary = land.execute({{}})
try:
    land.get_openlineage_facets_on_complete(None)
    lineage = "built"
except ModuleNotFoundError as exc:
    lineage = exc.name
print(json.dumps({{"chunks": chunks, "summary": summary, "lineage": lineage}}))
"""
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert sum(len(c) for c in result["chunks"]) > 0
    summary = result["summary"]
    assert summary["requested"] == len(ids)
    assert summary["published"] + summary["quarantined"] == len(ids)
    # Only asking for lineage needs OpenLineage, and only the listener asks.
    assert result["lineage"].startswith(("airflow.providers", "openlineage"))
