"""The report sensor and its trigger against the stand-in: poke, defer, terminal failures."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from airflow_provider_qode.exceptions import QodeInterviewFailedError
from airflow_provider_qode.hooks.qode import QodeHook
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.sensors.report import QodeInterviewReportSensor
from airflow_provider_qode.triggers.report import QodeInterviewReportTrigger
from tests.fixtures.sandbox import point_qode_conn

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture
def created(sandbox_factory, monkeypatch: pytest.MonkeyPatch):
    """A fresh stand-in whose created interviews report after one more GET, and one interview."""
    server = sandbox_factory(None, report_after_gets=1)
    point_qode_conn(monkeypatch, server.base_url, max_retries=1)
    with QodeHook() as hook:
        response = hook.create_interview(
            email="ada@example.com", interview_type="SOFTWARE_ENGINEER", role_title="Data Engineer"
        )
    return server, response.interview_id


def _collect(trigger: QodeInterviewReportTrigger) -> dict:
    async def first() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(first())


def test_poke_waits_then_succeeds(created):
    server, interview_id = created
    sensor = QodeInterviewReportSensor(task_id="wait", interview_id=interview_id)
    assert sensor.poke({}).is_done is False  # SCHEDULED on the first read
    done = sensor.poke({})  # REPORT_GENERATED afterwards
    assert done.is_done is True and done.xcom_value == "REPORT_GENERATED"
    assert server.stats()["by_id"][interview_id] == 2


def test_poke_mode_execute_returns_the_status_as_its_xcom(created):
    server, interview_id = created
    sensor = QodeInterviewReportSensor(
        task_id="wait", interview_id=interview_id, deferrable=False, poke_interval=0.01
    )
    assert sensor.execute({}) == "REPORT_GENERATED"  # type: ignore[arg-type]
    assert server.stats()["by_id"][interview_id] == 2  # waited one poke, then the report


@pytest.mark.parametrize("status", ["NO_SHOW", "candidate_aborted", "TECHNICAL_GLITCH"])
def test_terminal_failure_fails_clearly(created, status: str):
    server, interview_id = created
    server.set_status(interview_id, status)
    sensor = QodeInterviewReportSensor(task_id="wait", interview_id=interview_id)
    with pytest.raises(QodeInterviewFailedError, match=f"(?i)ended as {status}"):
        sensor.poke({})
    trigger = QodeInterviewReportTrigger(interview_id=interview_id, poll_interval=0.01)
    event = _collect(trigger)
    assert event["status"] == "failed" and event["interview_status"] == status.upper()
    with pytest.raises(QodeInterviewFailedError):
        sensor.execute_complete({}, event)


def test_trigger_serializes_to_plain_values_and_polls_until_the_report(created):
    server, interview_id = created
    trigger = QodeInterviewReportTrigger(interview_id=interview_id, poll_interval=0.01)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_qode.triggers.report.QodeInterviewReportTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = QodeInterviewReportTrigger(**kwargs)
    event = _collect(rebuilt)
    assert event == {
        "status": "success",
        "interview_id": interview_id,
        "interview_status": "REPORT_GENERATED",
    }
    assert server.stats()["by_id"][interview_id] == 2
    assert json.loads(json.dumps(event)) == event


def test_trigger_reports_unknown_interview_and_timeout(created):
    _, interview_id = created
    missing = _collect(QodeInterviewReportTrigger(interview_id="nope_nope", poll_interval=0.01))
    assert missing["status"] == "error" and missing["not_found"] is True
    timed_out = _collect(
        QodeInterviewReportTrigger(interview_id=interview_id, poll_interval=0.01, end_time=0)
    )
    assert timed_out["status"] == "timeout" and "SCHEDULED" in timed_out["message"]


def test_deferred_errors_stay_retryable_and_timeouts_are_sensor_timeouts(created):
    from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

    from airflow_provider_qode.exceptions import QodeError

    _, interview_id = created
    sensor = QodeInterviewReportSensor(task_id="wait", interview_id=interview_id)
    error = _collect(QodeInterviewReportTrigger(interview_id="nope_nope", poll_interval=0.01))
    with pytest.raises(QodeError, match="QodeNotFoundError") as info:
        sensor.execute_complete({}, error)
    assert not isinstance(info.value, AirflowFailException)
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete({}, {"status": "timeout", "interview_id": interview_id})


def test_hostile_id_is_refused_before_any_request(created):
    server, _ = created
    before = server.stats()["total"]
    sensor = QodeInterviewReportSensor(task_id="wait", interview_id="../admin")
    with pytest.raises(ValueError, match="interview id"):
        sensor.poke({})
    assert server.stats()["total"] == before


def test_example_dag_defers_then_lands_the_interview(
    created, airflow_db, aws_conn_env, s3_client, s3_bucket
):
    _, interview_id = created
    spec = importlib.util.spec_from_file_location(
        "qode_report_sensor", DAGS / "qode_report_sensor.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.dag.test(
        logical_date=datetime.now(UTC),
        run_conf={"interview_id": interview_id, "s3_bucket": s3_bucket, "s3_prefix": "lake"},
    )
    assert run.state == "success"
    index_key = LakeLayout("lake").index_key(interview_id)
    index = json.loads(s3_client.get_object(Bucket=s3_bucket, Key=index_key)["Body"].read())
    assert index["state"] == "published"
