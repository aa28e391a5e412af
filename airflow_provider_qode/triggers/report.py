"""Trigger that waits, in the triggerer, for an interview's report without holding a worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_qode.exceptions import QodeError, QodeNotFoundError
from airflow_provider_qode.hooks.qode import qode_async_client
from airflow_provider_qode.models import TERMINAL_FAILURE_STATUSES, InterviewStatus


def report_event(interview_id: str, status: str | None) -> dict[str, Any] | None:
    """The JSON event for a status, or None while the report is still to come.

    Shared by the sensor's poke and the trigger so both read statuses the same way.
    """
    parsed = InterviewStatus.parse(status)
    if parsed is InterviewStatus.REPORT_GENERATED:
        return {"status": "success", "interview_id": interview_id, "interview_status": parsed.value}
    if parsed in TERMINAL_FAILURE_STATUSES:
        return {
            "status": "failed",
            "interview_id": interview_id,
            "interview_status": parsed.value if parsed else status,
            "message": f"interview {interview_id} ended as {status}: no report will come",
        }
    return None


class QodeInterviewReportTrigger(BaseTrigger):
    """Poll the interview until its report exists or it ends without one.

    Arguments are plain JSON values so the triggerer can rebuild it from ``serialize()``.
    """

    def __init__(
        self,
        interview_id: str,
        qode_conn_id: str = "qode_default",
        poll_interval: float = 60.0,
        end_time: float | None = None,
    ) -> None:
        super().__init__()
        self.interview_id = interview_id
        self.qode_conn_id = qode_conn_id
        self.poll_interval = poll_interval
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "interview_id": self.interview_id,
                "qode_conn_id": self.qode_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async with qode_async_client(self.qode_conn_id) as client:
                while True:
                    interview = await client.get_interview(self.interview_id)
                    event = report_event(self.interview_id, interview.status)
                    if event is not None:
                        yield TriggerEvent(event)
                        return
                    if self.end_time is not None and time.time() >= self.end_time:
                        yield TriggerEvent(
                            {
                                "status": "timeout",
                                "interview_id": self.interview_id,
                                "interview_status": interview.status,
                                "message": f"interview {self.interview_id} still "
                                f"{interview.status} at the sensor's timeout",
                            }
                        )
                        return
                    self.log.info(
                        "Interview %s is %s; checking again in %ss",
                        self.interview_id,
                        interview.status,
                        self.poll_interval,
                    )
                    await asyncio.sleep(self.poll_interval)
        except QodeError as exc:
            yield TriggerEvent(
                {
                    "status": "error",
                    "interview_id": self.interview_id,
                    "error_type": type(exc).__name__,
                    "not_found": isinstance(exc, QodeNotFoundError),
                    "message": str(exc),
                }
            )
