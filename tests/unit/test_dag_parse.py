"""Parsing the example DAGs stays light: no pandas, no Great Expectations at import time.

The scheduler's DAG processor imports every DAG file again and again; pandas alone used to be
a third of the parse time. Checked in a fresh interpreter, since this test session has long
imported both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"

_PROBE = """
import json, runpy, sys
dags = {}
for path in sys.argv[1:]:
    dags.update({d.dag_id: d for d in runpy.run_path(path).values() if hasattr(d, "dag_id")})
heavy = ("pandas", "great_expectations", "numpy")
loaded = {name: name in sys.modules for name in heavy}
events = dags["qode_interview_ingestion"].params["events_prefix"]
print(json.dumps({"loaded": loaded, "events_prefix": events}))
"""


def test_importing_the_example_dags_loads_neither_pandas_nor_gx():
    files = sorted(str(p) for p in DAGS.glob("*.py"))
    assert len(files) >= 2
    env = {k: v for k, v in os.environ.items() if k != "QODE_LAKE_EVENTS_PREFIX"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *files], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["loaded"] == {"pandas": False, "great_expectations": False, "numpy": False}
    # By default a run lists only its own day's event files (see operators/events.py).
    assert found["events_prefix"] == "events/dt={date}/"
