"""The operators' lineage methods as the listener calls them, after real executes.

A chunk that fails after landing what it could still reports its lineage on failure; a task
that read or wrote nothing reports nothing.
"""

from __future__ import annotations

import pytest
from airflow.providers.openlineage.extractors.base import DefaultExtractor

from airflow_provider_qode.operators.events import QodeTerminalInterviewIdsOperator
from airflow_provider_qode.operators.interviews import (
    QodeIncompleteChunkError,
    QodeInterviewsToS3Operator,
)
from airflow_provider_qode.sandbox.airflow_stack import free_port
from tests.fixtures.sandbox import point_qode_conn


def test_failed_chunk_reports_api_and_lake_through_the_failure_path(
    monkeypatch, aws_conn_env, s3_bucket
):
    point_qode_conn(monkeypatch, f"http://127.0.0.1:{free_port()}/api/v1", max_retries=0)
    operator = QodeInterviewsToS3Operator(
        task_id="land", interview_ids=["a_1", "x/y"], s3_bucket=s3_bucket, s3_prefix="lake"
    )
    with pytest.raises(QodeIncompleteChunkError):
        operator.execute({})

    # What the listener does when a task fails: the failure hook, which falls back to ours.
    lineage = DefaultExtractor(operator).extract_on_failure(None)
    assert lineage is not None
    [api] = lineage.inputs
    assert api.name == "/api/v1/integrations/candidates/interviews"
    # The unsafe id was refused (quarantined) before any request; the other one never came.
    assertions = api.inputFacets["dataQualityAssertions"].assertions
    assert {a.assertion for a in assertions if not a.success} == {"QR-LIFE-02"}
    assert [(o.namespace, o.name) for o in lineage.outputs] == [
        (f"s3://{s3_bucket}", "lake/interviews"),
        (f"s3://{s3_bucket}", "lake/quarantine"),
    ]
    rows = [o.outputFacets["outputStatistics"].rowCount for o in lineage.outputs]
    assert rows == [0, 1]


def test_a_task_that_stopped_before_landing_reports_nothing(aws_conn_env):
    operator = QodeInterviewsToS3Operator(task_id="land", interview_ids=["a_1"], s3_bucket="")
    with pytest.raises(Exception, match="s3_bucket"):
        operator.execute({})
    lineage = DefaultExtractor(operator).extract_on_failure(None)
    assert lineage is not None and (lineage.inputs, lineage.outputs) == ([], [])


def test_ids_from_conf_read_no_events_and_report_no_input():
    class Run:
        conf = {"interview_ids": ["a_1", "b_2"]}

    operator = QodeTerminalInterviewIdsOperator(
        task_id="ids", s3_bucket="no-such-bucket", events_prefix="events/"
    )
    assert operator.execute({"dag_run": Run()}) == [["a_1", "b_2"]]
    lineage = DefaultExtractor(operator).extract_on_complete(None)
    assert lineage is not None and (lineage.inputs, lineage.outputs) == ([], [])
