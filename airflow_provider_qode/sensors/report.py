"""Sensor that waits for an interview's report, in a worker slot or deferred to the triggerer."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_provider_qode.exceptions import QodeError, QodeInterviewFailedError
from airflow_provider_qode.hooks.qode import QodeHook
from airflow_provider_qode.models import check_interview_id
from airflow_provider_qode.triggers.report import QodeInterviewReportTrigger, report_event


class QodeInterviewReportSensor(BaseSensorOperator):
    """Wait until an interview's status is ``REPORT_GENERATED``.

    A terminal failure status (no-show, drop-off, glitch, abort) fails the task with that status
    in the message instead of waiting for a report that will never come. Returns the status.

    :param interview_id: the interview to watch (templated).
    :param qode_conn_id: the ``qode`` connection.
    :param deferrable: wait in the triggerer instead of a worker slot.
    """

    template_fields: Sequence[str] = ("interview_id", "qode_conn_id")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        interview_id: str,
        qode_conn_id: str = QodeHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.interview_id = interview_id
        self.qode_conn_id = qode_conn_id
        self.deferrable = deferrable

    def _outcome(self, event: dict[str, Any]) -> str:
        """The status on success; else the error Airflow should see.

        A terminal status fails without retries (it cannot change); a timeout is a sensor
        timeout; an API error is an ordinary failure, so the task's retries apply as in poke mode.
        """
        status = event["status"]
        message = event.get("message") or str(event)
        if status == "success":
            self.log.info("Interview %s: report generated", event["interview_id"])
            return str(event["interview_status"])
        if status == "failed":
            raise QodeInterviewFailedError(message)
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        raise QodeError(f"{event.get('error_type', 'error')}: {message}")

    def poke(self, context: Context) -> PokeReturnValue:
        interview_id = check_interview_id(self.interview_id)
        with QodeHook(self.qode_conn_id) as hook:
            interview = hook.get_interview(interview_id)
        event = report_event(interview_id, interview.status)
        if event is None:
            self.log.info("Interview %s is %s; waiting", interview_id, interview.status)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._outcome(event))

    def execute(self, context: Context) -> Any:
        check_interview_id(self.interview_id)
        if not self.deferrable:
            # The base loop returns the last PokeReturnValue's xcom_value: the status.
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=QodeInterviewReportTrigger(
                interview_id=self.interview_id,
                qode_conn_id=self.qode_conn_id,
                poll_interval=float(self.poke_interval),
                end_time=time.time() + float(self.timeout),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Back from the triggerer: succeed on a report, fail clearly on anything else."""
        return self._outcome(event)


__all__ = ["QodeInterviewReportSensor"]
