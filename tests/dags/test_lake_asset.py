"""Asset events name the lake a run actually wrote: one per run, none when nothing changed.

Real Airflow (dag.test, SQLite DB) against the stand-in and moto's server; the events are read
back from the metadata DB the way the scheduler sees them. The sensor DAG's event is checked
under the real scheduler, in tests/e2e/.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from airflow_provider_qode.operators.interviews import lake_asset
from tests.dags.test_ingestion_dag import _load

PREFIX = "assets-lake"


def lake_events(dag_id: str, run_id: str) -> list[dict]:
    """Asset events a DAG run emitted: asset uri/name, source task and extra."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent, AssetModel)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
        ).all()
        return [
            {
                "uri": asset.uri,
                "name": asset.name,
                "task_id": event.source_task_id,
                "map_index": event.source_map_index,
                "extra": dict(event.extra),
                "aliases": sorted(a.name for a in event.source_aliases),
            }
            for event, asset in rows
        ]


def test_one_event_per_run_for_the_overridden_bucket_none_on_a_no_change_rerun(
    airflow_db, qode_conn_env, aws_conn_env, sandbox_dataset, s3_bucket, monkeypatch
):
    # The parse-time default names another bucket: the event must follow the run's conf.
    monkeypatch.setenv("QODE_LAKE_BUCKET", "not-this-bucket")
    dag = _load("qode_interview_ingestion").dag
    ids = sandbox_dataset.ids[:30]
    conf = {"interview_ids": ids, "s3_bucket": s3_bucket, "s3_prefix": PREFIX, "chunk_size": 10}
    run = dag.test(logical_date=datetime.now(UTC), run_conf=conf)
    assert run.state == "success"

    [event] = lake_events(dag.dag_id, run.run_id)  # 3 chunks, one event
    expected = lake_asset(s3_bucket, PREFIX)
    assert (event["uri"], event["name"]) == (expected.uri, expected.name)
    assert event["uri"] == f"s3://{s3_bucket}/{PREFIX}/interviews"
    assert event["task_id"] == "summarize" and event["aliases"] == ["qode_lake"]
    extra = event["extra"]
    published = sum(sandbox_dataset.expected(i).verdict == "published" for i in ids)
    assert extra["requested"] == len(ids) and extra["published"] == published > 0
    assert extra["published"] + extra["quarantined"] + extra["missing"] == len(ids)
    assert extra["unchanged"] == 0
    assert len(extra["manifest_uris"]) == 3
    manifests = f"s3://{s3_bucket}/{PREFIX}/_manifests/"
    assert all(uri.startswith(manifests) for uri in extra["manifest_uris"])
    json.dumps(extra)  # plain JSON, as the REST API serves it

    rerun = dag.test(logical_date=datetime.now(UTC), run_conf=conf)
    assert rerun.state == "success"
    assert lake_events(dag.dag_id, rerun.run_id) == []  # every interview already in place


def test_a_run_that_publishes_nothing_emits_no_event(
    airflow_db, qode_conn_env, aws_conn_env, sandbox_dataset, s3_bucket
):
    dag = _load("qode_interview_ingestion").dag
    broken = [i for i in sandbox_dataset.ids if sandbox_dataset.expected(i).verdict != "published"]
    conf = {"interview_ids": broken[:4], "s3_bucket": s3_bucket, "s3_prefix": PREFIX}
    run = dag.test(logical_date=datetime.now(UTC), run_conf=conf)
    assert run.state == "success"
    assert lake_events(dag.dag_id, run.run_id) == []
