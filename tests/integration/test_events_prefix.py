"""The events task lists only its window's dated prefixes (real S3 server), not all history."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from airflow_provider_qode.operators.events import (
    QodeTerminalInterviewIdsOperator,
    dated_prefixes,
)

START = datetime(2025, 11, 11, tzinfo=UTC)
END = datetime(2025, 11, 12, tzinfo=UTC)


def _event(interview_id: str, ts: str) -> bytes:
    doc = {"interviewId": interview_id, "timestamp": ts, "realtimeStatus": "INTERVIEW_COMPLETED"}
    return json.dumps(doc).encode() + b"\n"


@pytest.fixture
def events_bucket(s3_client, s3_bucket, aws_conn_env) -> str:
    # Each file under its UTC day, plus one mislabelled file under the day before: an event of
    # the window that only a scan of all history would find.
    put = s3_client.put_object
    put(
        Bucket=s3_bucket,
        Key="events/dt=2025-11-11/a.jsonl",
        Body=_event("day_1", "2025-11-11T09:00:00Z"),
    )
    put(
        Bucket=s3_bucket,
        Key="events/dt=2025-11-10/a.jsonl",
        Body=_event("prev_1", "2025-11-10T23:00:00Z"),
    )
    put(
        Bucket=s3_bucket,
        Key="events/dt=2025-11-10/late.jsonl",
        Body=_event("stray_1", "2025-11-11T10:00:00Z"),
    )
    return s3_bucket


def _ids(bucket: str, prefix: str, **window: str) -> list[str]:
    operator = QodeTerminalInterviewIdsOperator(
        task_id="ids", s3_bucket=bucket, events_prefix=prefix, chunk_size=100, **window
    )
    context = {"data_interval_start": START, "data_interval_end": END}
    return [i for chunk in operator.execute(context) for i in chunk]  # type: ignore[arg-type]


def test_a_dated_prefix_reads_only_the_windows_days(events_bucket):
    assert _ids(events_bucket, "events/dt={date}/") == ["day_1"]
    # Without the placeholder every file under the prefix is read, as documented.
    assert _ids(events_bucket, "events/") == ["day_1", "stray_1"]


def test_a_window_over_two_days_lists_both(events_bucket):
    ids = _ids(
        events_bucket,
        "events/dt={date}/",
        window_start="2025-11-10T12:00:00Z",
        window_end="2025-11-12T00:00:00Z",
    )
    assert ids == ["day_1", "prev_1", "stray_1"]


def test_dated_prefixes_cover_each_utc_date_of_a_half_open_window():
    assert dated_prefixes("e/{date}/", START, END) == ["e/2025-11-11/"]
    late = datetime(2025, 11, 12, 0, 0, 1, tzinfo=UTC)
    assert dated_prefixes("e/{date}/", START, late) == ["e/2025-11-11/", "e/2025-11-12/"]
    # A window given in another zone is mapped to UTC dates.
    local = datetime.fromisoformat("2025-11-11T01:00:00+05:00")  # 2025-11-10 20:00 UTC
    assert dated_prefixes("e/{date}/", local, END) == ["e/2025-11-10/", "e/2025-11-11/"]
    assert dated_prefixes("events/", START, END) == ["events/"]
