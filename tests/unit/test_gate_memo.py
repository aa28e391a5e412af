"""The gate builds each expectation's GX configuration once per run, in its own thread only."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_qode.quality import gate

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"


def _expectation() -> Any:
    gx = gate._import_gx()
    return gx.expectations.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=100)


def _comparable(batch: gate.BatchVerdict) -> tuple[Any, Any]:
    """Verdicts and every expectation result, without what differs between any two runs."""
    results = {
        table: [
            (r["expectation_config"]["meta"], r["success"], r["result"]) for r in result["results"]
        ]
        for table, result in batch.gx_results.items()
    }
    return [v.to_dict() for v in batch.interviews], results


def test_memo_serves_the_running_thread_only_and_goes_with_the_run() -> None:
    from great_expectations.expectations.expectation import Expectation

    gx_property = Expectation.__dict__["configuration"]
    expectation = _expectation()
    memo = gate._ConfigurationMemo()
    seen: list[bool] = []
    with memo.active():
        assert expectation.configuration is expectation.configuration
        other = threading.Thread(
            target=lambda: seen.append(expectation.configuration is expectation.configuration)
        )
        other.start()
        other.join()
    assert seen == [False]  # another thread gets GX's own property
    assert Expectation.__dict__["configuration"] is gx_property
    assert expectation.configuration is not expectation.configuration
    assert expectation.configuration.to_json_dict() == expectation.configuration.to_json_dict()


def test_memo_restores_gx_property_when_the_run_fails() -> None:
    from great_expectations.expectations.expectation import Expectation

    gx_property = Expectation.__dict__["configuration"]
    with pytest.raises(RuntimeError), gate._ConfigurationMemo().active():
        raise RuntimeError("an expectation raised")
    assert Expectation.__dict__["configuration"] is gx_property


def test_verdicts_and_gx_results_equal_those_without_the_memo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = [
        gate.FetchedInterview(path.stem, path.read_bytes())
        for path in sorted(EXAMPLES.glob("*.json"))
    ]
    assert len(items) > 5
    with_memo = _comparable(gate.validate_batch(items))
    monkeypatch.setattr(gate._configurations, "active", contextlib.nullcontext)
    without = _comparable(gate.validate_batch(items))
    assert with_memo == without
    assert any(v["verdict"] != "published" for v in with_memo[0])
