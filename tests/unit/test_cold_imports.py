"""What a fresh task process imports, and when (see docs/operations.md#task-start-up).

Every mapped landing task is a new interpreter. Importing the operator must not pull in pandas
or GX; the gate's warm-up thread imports them (with the modules GX only needs for expectations
the gate never runs left for later) and builds the one GX context the process reuses. Checked
in fresh interpreters, since this test session has long imported everything. No timings here:
those belong to ``bench/cold.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from airflow_provider_qode.quality import WARM_UP_SWITCH_INTERVAL, gate
from airflow_provider_qode.quality.gate import FetchedInterview, validate_batch
from airflow_provider_qode.sandbox.generator import SandboxDataset

HEAVY = ("pandas", "numpy", "great_expectations")
#: Modules GX imports at start-up for the KL-divergence and KS expectations (and their charts).
DEFERRED_WITNESSES = ("scipy.stats._stats_py", "altair.vegalite")


def _probe(code: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_operator_loads_neither_pandas_nor_gx() -> None:
    found = _probe(
        "import json, sys\n"
        "from airflow_provider_qode.operators.interviews import QodeInterviewsToS3Operator\n"
        "from airflow_provider_qode.ingest import ChunkIngestor\n"
        f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n"
    )
    assert found == dict.fromkeys(HEAVY, False)


def test_warm_up_thread_imports_gx_but_defers_what_the_gate_never_runs() -> None:
    found = _probe(
        "import json, sys, time\n"
        "from airflow_provider_qode.quality import gate, start_warm_up\n"
        "default = sys.getswitchinterval()\n"
        "gate._build_lock.acquire()\n"  # hold the warm-up before GX: see the interval it set
        "thread = start_warm_up()\n"
        "deadline = time.monotonic() + 120\n"
        "while sys.getswitchinterval() == default and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "during = sys.getswitchinterval()\n"
        "gx_while_held = 'great_expectations' in sys.modules\n"
        "gate._build_lock.release()\n"
        "thread.join(240)\n"
        "state = {\n"
        "  'alive': thread.is_alive(),\n"
        "  'thread': thread.name,\n"
        "  'during': during,\n"
        "  'gx_while_held': gx_while_held,\n"
        "  'switch_interval_restored': sys.getswitchinterval() == default,\n"
        "  'gx': 'great_expectations' in sys.modules,\n"
        "  'context_built': gate._validators is not None,\n"
        "  'tables': sorted(gate._validators.definitions) if gate._validators else [],\n"
        f"  'deferred': [m for m in {DEFERRED_WITNESSES!r} if m in sys.modules],\n"
        "  'stand_ins_left': [n for n in gate.DEFERRED_MODULES\n"
        "                     if type(sys.modules.get(n)).__name__ == '_DeferredModule'],\n"
        "}\n"
        "from scipy import stats\n"  # on first use the real module loads and answers
        "state['cdf'] = stats.norm.cdf(0.0)\n"
        "state['stats_loaded'] = 'scipy.stats._stats_py' in sys.modules\n"
        "print(json.dumps(state))\n"
    )
    assert found["alive"] is False
    assert found["thread"] == "qode-gate-warm-up"
    assert found["during"] == WARM_UP_SWITCH_INTERVAL
    assert found["gx_while_held"] is False
    assert found["switch_interval_restored"] is True
    assert found["gx"] is True
    assert found["context_built"] is True
    assert found["tables"] == sorted(gate.TABLES)
    assert found["deferred"] == []
    assert found["stand_ins_left"] == []
    assert found["cdf"] == 0.5
    assert found["stats_loaded"] is True


def test_gx_deferred_stand_in_hands_over_to_the_real_module() -> None:
    """GX's own references to a deferred module work once something reads them."""
    found = _probe(
        "import json, sys\n"
        "from airflow_provider_qode.quality import gate\n"
        "gate._import_gx()\n"
        "from great_expectations.expectations.core import "
        "expect_column_kl_divergence_to_be_less_than as kl\n"
        "before = 'altair.vegalite' in sys.modules\n"
        "chart = kl.alt.Chart\n"
        "print(json.dumps({'before': before, 'chart': chart.__name__,\n"
        "                  'after': 'altair.vegalite' in sys.modules,\n"
        "                  'real': type(sys.modules['altair']).__name__}))\n"
    )
    assert found == {"before": False, "chart": "Chart", "after": True, "real": "module"}


def test_one_context_serves_every_batch_and_keeps_no_results() -> None:
    dataset = SandboxDataset(seed=7, count=30, broken_share=0.3)
    items = [FetchedInterview(i, dataset.body(i)) for i in dataset.ids]
    first = validate_batch(items)
    validators = gate._validators
    second = validate_batch(items)

    assert gate._validators is validators is not None
    assert [v.to_dict() for v in first.interviews] == [v.to_dict() for v in second.interviews]
    assert first.quarantined, "the dataset has broken interviews"
    assert validators.context.validation_results_store.list_keys() == []
    assert validators.source.get_execution_engine().batch_manager.batch_data_cache == {}
