"""Event files -> finished interview ids: windowing, latest-event-wins, bad lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_qode.events import chunked, terminal_interview_ids
from airflow_provider_qode.models import parse_timestamp

START = datetime(2025, 11, 11, tzinfo=UTC)
END = datetime(2025, 11, 12, tzinfo=UTC)


def _line(interview_id: str, ts: str, status: str, terminal: bool | None = None) -> bytes:
    event = {
        "interviewId": interview_id,
        "timestamp": ts,
        "realtimeStatus": status,
        "eventName": "x",
    }
    if terminal is not None:
        event["isTerminal"] = terminal
    return json.dumps(event).encode()


def _lines(*raw: bytes):
    return [("events/a.jsonl", n, line) for n, line in enumerate(raw, start=1)]


def test_latest_terminal_event_in_window_counts_once():
    found = terminal_interview_ids(
        _lines(
            _line("a_1", "2025-11-11T08:00:00Z", "INTERVIEW_STARTED"),
            _line("a_1", "2025-11-11T09:00:00Z", "INTERVIEW_COMPLETED"),
            _line("a_1", "2025-11-11T09:00:01Z", "INTERVIEW_COMPLETED"),
            _line("b_2", "2025-11-11T08:00:00Z", "INTERVIEW_COMPLETED"),
            _line("b_2", "2025-11-11T10:00:00Z", "INTERVIEW_LOCKED"),
            _line("c_3", "2025-11-12T00:00:00Z", "INTERVIEW_COMPLETED"),
            _line("d_4", "2025-11-11T23:59:59+00:00", "INTERVIEW_ABANDONED"),
            _line("e_5", "2025-11-11T12:00:00+02:00", "WHATEVER", terminal=True),
        ),
        START,
        END,
    )
    assert found.interview_ids == ["a_1", "d_4", "e_5"]
    assert found.events_read == 8


def test_bad_lines_are_reported_not_fatal():
    found = terminal_interview_ids(
        _lines(
            b"{not json",
            b"",
            json.dumps({"interviewId": 5}).encode(),
            _line("a_1", "11/11/2025", "INTERVIEW_COMPLETED"),
            _line("ok_1", "2025-11-11T01:00:00Z", "INTERVIEW_COMPLETED"),
        ),
        START,
        END,
    )
    assert found.interview_ids == ["ok_1"]
    assert [p.split(":")[1] for p in found.unreadable_lines] == ["1", "3", "4"]


def test_hostile_ids_are_refused_not_returned():
    found = terminal_interview_ids(
        _lines(_line("../../etc", "2025-11-11T01:00:00Z", "INTERVIEW_COMPLETED")), START, END
    )
    assert found.interview_ids == [] and found.refused_ids == ["../../etc"]


def test_timestamps_need_a_zone():
    assert parse_timestamp("2025-11-11T08:04:04Z") == datetime(2025, 11, 11, 8, 4, 4, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_timestamp("2025-11-11T08:04:04")


def test_chunking():
    assert chunked(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    assert chunked([], 2) == []
    with pytest.raises(ValueError):
        chunked(["a"], 0)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            b'{"interviewId": "x_1", "timestamp": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "deeper",
        ),
        (_line("x_1", "0001-01-01T00:30:00+01:00", "INTERVIEW_COMPLETED"), "years 1 to 9999"),
        (_line("x_1", "9999-12-31T23:59:59-01:00", "INTERVIEW_COMPLETED"), "years 1 to 9999"),
        (b'{"interviewId": "x_\xff\xfe", "timestamp": "2025-11-11T01:00:00Z"}', "not UTF-8"),
        (_line("x_\ud800", "2025-11-11T01:00:00Z", "INTERVIEW_COMPLETED"), "surrogate"),
        (
            b'{"interviewId": "x_1", "interviewId": "y_2", "timestamp": "2025-11-11T01:00:00Z"}',
            "duplicate",
        ),
        (b'{"interviewId": "x_1", "timestamp": "2025-11-11T01:00:00Z", "eventValue": NaN}', "NaN"),
    ],
)
def test_hostile_lines_are_reported_and_skipped(line: bytes, reason: str):
    good = _line("ok_1", "2025-11-11T01:00:00Z", "INTERVIEW_COMPLETED")
    found = terminal_interview_ids(_lines(good, line, good), START, END)
    assert found.interview_ids == ["ok_1"] and found.refused_ids == []
    assert found.events_read == 2
    assert len(found.unreadable_lines) == 1
    problem = found.unreadable_lines[0]
    assert problem.startswith("events/a.jsonl:2: ") and reason in problem
    problem.encode("utf-8")  # loggable as UTF-8


hostile_lines = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda i, ts: json.dumps({"interviewId": i, "timestamp": ts, "isTerminal": True}).encode(),
        st.text(max_size=10),
        st.text(max_size=30)
        | st.sampled_from(["0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-01:00"]),
    ),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(hostile_lines, max_size=6))
def test_no_line_fails_the_scan(lines: list[bytes]):
    good = _line("ok_1", "2025-11-11T01:00:00Z", "INTERVIEW_COMPLETED")
    found = terminal_interview_ids(_lines(*lines, good), START, END)
    assert "ok_1" in found.interview_ids
    for text in [*found.interview_ids, *found.refused_ids, *found.unreadable_lines]:
        text.encode("utf-8")
