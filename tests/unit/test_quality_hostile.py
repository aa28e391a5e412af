"""The gate on hostile values: each ends as its own finding, the rest of the batch is untouched."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow_provider_qode.models import Interview
from airflow_provider_qode.quality.gate import FetchedInterview, validate_batch

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
BASE: dict[str, Any] = json.loads((EXAMPLES / "valid_ci_v2.json").read_text())
BASE_ID: str = BASE["interview_id"]


def _body(**changes: Any) -> bytes:
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return json.dumps(doc).encode()


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"score": 50}
    for _ in range(levels):
        value = {"score": 50, "next": value}
    return value


def test_timestamps_outside_the_window_or_calendar_are_qr_life_03():
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    stamps = {
        "before_2000": "1999-12-31T23:59:59Z",
        "year_one": "0001-01-01T00:00:00Z",
        "below_year_one": "0001-01-01T00:30:00+01:00",
        "past_9999": "9999-12-31T23:59:59-01:00",
        "future": future,
        "ok": "2025-11-22T21:12:01Z",
    }
    batch = validate_batch(
        FetchedInterview(BASE_ID, _body(timestamp=t), source=name) for name, t in stamps.items()
    )
    verdicts = {v.source: v for v in batch.interviews}
    assert verdicts.pop("ok").published
    for name, verdict in verdicts.items():
        assert verdict.failed_rules == ("QR-LIFE-03",), (name, verdict.reason_texts())
    assert "before 2000" in verdicts["before_2000"].reason_texts()[0]
    assert "before 2000" in verdicts["year_one"].reason_texts()[0]
    assert "more than a day in the future" in verdicts["future"].reason_texts()[0]


def test_an_error_while_flattening_one_interview_quarantines_only_it():
    # A model handed in pre-parsed skips the strict reader: nested far beyond what any reader
    # recurses through, it makes the flattener raise RecursionError half-way through its rows.
    poisoned = Interview.model_validate(
        {**BASE, "language_proficiency": {"a": 50, "b": _deep(5000)}}
    )
    good = FetchedInterview(BASE_ID, _body(), source="good")
    batch = validate_batch([good, FetchedInterview("poisoned_id", b"{}", interview=poisoned), good])
    first, bad, last = batch.interviews
    assert first.published and last.published
    assert not first.failed_rules and not last.failed_rules
    assert bad.failed_rules == ("QR-PARSE",)
    (reason,) = bad.reason_texts()
    assert "unexpected RecursionError while checking interview 'poisoned_id'" in reason
    # no row of the poisoned interview (position 1) stayed behind in any table
    assert batch.table_rows["language_proficiency"] == 0


def test_an_integer_beyond_a_float_is_out_of_range_not_a_crash():
    huge = Interview.model_validate({**BASE, "language_proficiency": {"fluency": 10**400}})
    (verdict,) = validate_batch([FetchedInterview(BASE_ID, b"{}", interview=huge)]).interviews
    assert "QR-SCORE-05" in verdict.failed_rules
    assert any("language_proficiency.fluency = non-finite" in r for r in verdict.reason_texts())
