"""Wait for one interview's report (deferred, no worker slot held), then land it.

Trigger with ``{"interview_id": "<id>"}`` as the run's conf, e.g. from the system that created
the interview.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import DAG, Param

from airflow_provider_qode.operators.interviews import QodeInterviewsToS3Operator, lake_alias
from airflow_provider_qode.sensors.report import QodeInterviewReportSensor

with DAG(
    dag_id="qode_report_sensor",
    description="Wait for a Qode interview's report, then land it in the lake",
    schedule=None,
    start_date=datetime(2025, 11, 1, tzinfo=UTC),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "interview_id": Param("", type="string", description="Interview to wait for"),
        "s3_bucket": Param(os.environ.get("QODE_LAKE_BUCKET", "qode-lake"), type="string"),
        "s3_prefix": Param(os.environ.get("QODE_LAKE_PREFIX", "qode"), type="string"),
    },
    tags=["qode", "sensor"],
    doc_md=__doc__,
) as dag:
    wait = QodeInterviewReportSensor(
        task_id="wait_for_report",
        interview_id="{{ dag_run.conf.get('interview_id') or params.interview_id }}",
        deferrable=True,
        poke_interval=60,
        timeout=3 * 24 * 3600,
    )
    land = QodeInterviewsToS3Operator(
        task_id="land_interview",
        interview_ids=["{{ dag_run.conf.get('interview_id') or params.interview_id }}"],
        s3_bucket="{{ params.s3_bucket }}",
        s3_prefix="{{ params.s3_prefix }}",
        outlets=[lake_alias()],  # an Asset event for the lake written, when it published
    )
    wait >> land
