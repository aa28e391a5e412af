"""Progress lines are throttled: one per step of the total or per interval, plus the last."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_qode.progress import StageProgress

LOGGER = "airflow_provider_qode.ingest"


class Clock:
    """A clock the test moves by hand, so throttling by time needs no sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_a_line_per_tenth_and_the_last(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger=LOGGER)
    progress = StageProgress("Landed", 1000, clock=Clock())
    for _ in range(1000):
        progress.advance()
    lines = _lines(caplog)
    assert [line.split(" (")[0] for line in lines] == [
        f"Landed {k}/1000" for k in range(100, 1001, 100)
    ]
    assert lines[-1].startswith("Landed 1000/1000 (100%)")


def test_a_quiet_stage_still_logs_every_interval(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Clock()
    progress = StageProgress("Fetched", 1000, clock=clock, detail=lambda: "retries 7")
    progress.advance(3)
    clock.now += 9.9
    progress.tick()
    assert _lines(caplog) == []  # 3 of 1000 and under 10 s: nothing yet
    clock.now += 0.2
    progress.tick()  # a heartbeat after 10 s, even without new items
    assert _lines(caplog) == ["Fetched 3/1000 (0%); retries 7; 10.1 s"]
    progress.tick()
    assert len(_lines(caplog)) == 1  # not again until the next interval


def test_an_empty_stage_logs_nothing_until_it_is_told(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger=LOGGER)
    StageProgress("Landed", 0, clock=Clock()).tick()
    assert _lines(caplog) == []
