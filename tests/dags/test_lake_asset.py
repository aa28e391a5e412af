"""Asset events name the lake a run actually wrote: one per run, none when nothing changed.

Real Airflow (dag.test, SQLite DB) against the stand-in and moto's server; the events are read
back from the metadata DB the way the scheduler sees them.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from airflow_provider_qode.operators.interviews import lake_asset

DAGS = Path(__file__).resolve().parents[2] / "dags"
PREFIX = "assets-lake"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"test_asset_{name}", DAGS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@pytest.fixture
def created(sandbox_factory, monkeypatch: pytest.MonkeyPatch):
    from airflow_provider_qode.hooks.qode import QodeHook
    from tests.fixtures.sandbox import point_qode_conn

    server = sandbox_factory(None, report_after_gets=1)
    point_qode_conn(monkeypatch, server.base_url, max_retries=1)
    with QodeHook() as hook:
        response = hook.create_interview(
            email="ada@example.com", interview_type="SOFTWARE_ENGINEER", role_title="Data Engineer"
        )
    return response.interview_id


def test_the_sensor_dags_landing_emits_for_its_bucket(created, airflow_db, aws_conn_env, s3_bucket):
    dag = _load("qode_report_sensor").dag
    conf = {"interview_id": created, "s3_bucket": s3_bucket, "s3_prefix": PREFIX}
    run = dag.test(logical_date=datetime.now(UTC), run_conf=conf)
    assert run.state == "success"
    [event] = lake_events(dag.dag_id, run.run_id)
    assert event["uri"] == lake_asset(s3_bucket, PREFIX).uri
    assert event["task_id"] == "land_interview"
    assert event["extra"]["published"] == 1 and len(event["extra"]["manifest_uris"]) == 1
