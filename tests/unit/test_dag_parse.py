"""Parsing the example DAGs stays light: no pandas, no Great Expectations at import time.

The scheduler's DAG processor imports every DAG file again and again; pandas alone used to be
a third of the parse time. Checked in a fresh interpreter, since this test session has long
imported both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"

_PROBE = """
import json, runpy, sys
for path in sys.argv[1:]:
    runpy.run_path(path)
heavy = ("pandas", "great_expectations", "numpy")
print(json.dumps({name: name in sys.modules for name in heavy}))
"""


def test_importing_the_example_dags_loads_neither_pandas_nor_gx():
    files = sorted(str(p) for p in DAGS.glob("*.py"))
    assert len(files) >= 2
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *files], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"pandas": False, "great_expectations": False, "numpy": False}
