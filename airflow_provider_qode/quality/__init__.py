"""The quality gate: ``QUALITY_RULES.md`` as Great Expectations suites over a batch of interviews.

``rules`` holds the rule table, ``flatten`` turns models into pandas tables, ``suite`` holds the
expectations, ``gate`` runs them (:func:`validate_batch`), ``report`` renders the results and
``cli`` is ``qode-lake validate`` and ``qode-lake suites export``. Exports are resolved lazily so
that importing this package (as ``qode-lake --help`` does) pulls in neither pandas nor Airflow
nor GX.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_qode.quality.gate import (
        BatchVerdict,
        FetchedInterview,
        InterviewVerdict,
        QualityGateError,
        Reason,
        validate_batch,
    )
    from airflow_provider_qode.quality.report import (
        full_results,
        html_report,
        json_report,
        json_summary,
        render_html,
        summary,
        write_reports,
    )
    from airflow_provider_qode.quality.rules import RULES, Rule, Severity

_EXPORTS = {
    "BatchVerdict": "gate",
    "FetchedInterview": "gate",
    "InterviewVerdict": "gate",
    "QualityGateError": "gate",
    "Reason": "gate",
    "validate_batch": "gate",
    "full_results": "report",
    "html_report": "report",
    "json_report": "report",
    "json_summary": "report",
    "render_html": "report",
    "summary": "report",
    "write_reports": "report",
    "RULES": "rules",
    "Rule": "rules",
    "Severity": "rules",
}

__all__ = [
    "RULES",
    "BatchVerdict",
    "FetchedInterview",
    "InterviewVerdict",
    "QualityGateError",
    "Reason",
    "Rule",
    "Severity",
    "full_results",
    "html_report",
    "json_report",
    "json_summary",
    "render_html",
    "start_warm_up",
    "summary",
    "validate_batch",
    "write_reports",
]


#: The GIL switch interval while the warm-up runs (Python's default is 5 ms). Importing holds
#: the GIL; with 5 ms the fetching event loop waits up to that long at every wake-up and the
#: fetch stretches to the length of the imports. Restored when the warm-up ends.
WARM_UP_SWITCH_INTERVAL = 0.0005


def _warm_up() -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, WARM_UP_SWITCH_INTERVAL))
    try:
        importlib.import_module(f"{__name__}.gate").warm_up()
    except Exception:  # the gate imports again when it runs, and raises there
        logging.getLogger(__name__).debug("quality gate warm-up failed", exc_info=True)
    finally:
        sys.setswitchinterval(previous)


def start_warm_up() -> threading.Thread:
    """Import the gate (pandas, GX) and build its GX context in a background thread.

    Every mapped task is a fresh process that would otherwise import GX only when its chunk
    reaches the gate; started before the fetch, the imports overlap the wait on the API.
    ``validate_batch`` waits for the thread's context if it gets there first.
    """
    thread = threading.Thread(target=_warm_up, name="qode-gate-warm-up", daemon=True)
    thread.start()
    return thread


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
