"""Daily ingestion of finished Qode interviews into the S3 lake, checked by the quality gate.

Ids come from ``dag_run.conf["interview_ids"]`` when given (manual runs, backfills), otherwise
from the day's interview-event files under ``events_prefix``. They are split into chunks, one
mapped landing task per chunk, so any executor spreads the day over its workers. Then ``curate``
rebuilds the curated Parquet tables of the date partitions the chunks changed (skipped when none
changed), and ``summarize`` logs the day and emits the run's one Asset event. Connections:
``qode_default`` and ``aws_default``. Defaults for the params come from ``QODE_LAKE_*``
environment variables so one file serves every environment.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, get_current_context, task

from airflow_provider_qode.operators.curate import QodeCurateOperator
from airflow_provider_qode.operators.events import QodeTerminalInterviewIdsOperator
from airflow_provider_qode.operators.interviews import QodeInterviewsToS3Operator, lake_alias

BUCKET = os.environ.get("QODE_LAKE_BUCKET", "qode-lake")
PREFIX = os.environ.get("QODE_LAKE_PREFIX", "qode")
# "{date}" becomes each UTC date of the run's data interval: a run lists its own day only.
EVENTS_PREFIX = os.environ.get("QODE_LAKE_EVENTS_PREFIX", "events/dt={date}/")

with DAG(
    dag_id="qode_interview_ingestion",
    description="Fetch finished Qode interviews, check them, land them in S3 by date and role",
    # A data interval of the previous UTC day: the events window the ids come from.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    params={
        "s3_bucket": Param(BUCKET, type="string", description="Lake bucket"),
        "s3_prefix": Param(PREFIX, type="string", description="Lake prefix in the bucket"),
        "events_prefix": Param(EVENTS_PREFIX, type="string", description="Event files prefix"),
        "chunk_size": Param(500, type="integer", minimum=1, description="Ids per landing task"),
    },
    tags=["qode", "ingestion"],
    doc_md=__doc__,
) as dag:
    chunks = QodeTerminalInterviewIdsOperator(
        task_id="finished_interview_ids",
        s3_bucket="{{ params.s3_bucket }}",
        events_prefix="{{ params.events_prefix }}",
        chunk_size="{{ params.chunk_size }}",
    )

    landed = QodeInterviewsToS3Operator.partial(
        task_id="land_chunk",
        s3_bucket="{{ params.s3_bucket }}",
        s3_prefix="{{ params.s3_prefix }}",
    ).expand(interview_ids=chunks.output)

    # The curated Parquet tables of the date partitions the chunks changed (a move counts its
    # old date too), rebuilt in full from raw; skipped when no chunk changed a partition, and
    # (all_success) never after a failed chunk, whose changes no XCom reports.
    curated = QodeCurateOperator(
        task_id="curate",
        s3_bucket="{{ params.s3_bucket }}",
        s3_prefix="{{ params.s3_prefix }}",
        summaries=landed.output,  # type: ignore[arg-type]
    )

    # none_failed: an empty day (no chunks, the mapped task skipped) still gets its summary,
    # while a failed chunk still fails the run.
    # The run's one Asset event comes from here, for the bucket and prefix this run wrote (the
    # alias resolves at run time); none when nothing new was published.
    @task(trigger_rule="none_failed", outlets=[lake_alias()])
    def summarize(summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """Log one table of what landed where; return the day's totals (small, for XCom)."""
        from airflow_provider_qode.operators.interviews import (
            emit_lake_event,
            summary_table,
            total_summary,
        )

        # Indexed reads: iterating the lazy XCom sequence probes one offset past its end,
        # which Airflow logs as an error.
        summaries = [summaries[i] for i in range(len(summaries))] if summaries else []
        summaries = [s for s in summaries if s]
        print(summary_table(summaries))
        totals = total_summary(summaries)
        context = get_current_context()
        params = context["params"]
        outlets = context["task"].outlets
        emit_lake_event(context, outlets, params["s3_bucket"], params["s3_prefix"], totals)
        return totals

    # After curate: the run's one Asset event says raw and curated tables are both current.
    # none_failed lets a skipped curate (nothing changed) through.
    curated >> summarize(landed.output)  # type: ignore[arg-type]
