"""The example DAGs in real Airflow (dag.test, SQLite DB) against the stand-in and moto's server."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from airflow.dag_processing.dagbag import DagBag

from airflow_provider_qode.lake.layout import LakeLayout, encode_role, interview_date

DAGS = Path(__file__).resolve().parents[2] / "dags"
PREFIX = "lake"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"test_dag_{name}", DAGS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _objects(s3_client, bucket: str) -> dict[str, str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["ETag"] for p in pages for o in p.get("Contents", [])}


def _read(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _run(dag, conf: dict, logical_date: datetime | None = None):
    return dag.test(logical_date=logical_date or datetime.now(UTC), run_conf=conf)


def rerun_summary(run) -> dict:
    [ti] = [ti for ti in run.get_task_instances() if ti.task_id == "summarize"]
    return ti.xcom_pull(task_ids="summarize")


def summary_of(run) -> dict:
    """The summarize task's XCom: the run's totals."""
    [ti] = [ti for ti in run.get_task_instances() if ti.task_id == "summarize"]
    return ti.xcom_pull(task_ids="summarize")


def test_dag_files_import_without_errors(airflow_db):
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert {"qode_interview_ingestion", "qode_report_sensor"} <= set(bag.dag_ids)
    dag = bag.get_dag("qode_interview_ingestion")
    assert {"finished_interview_ids", "land_chunk", "summarize"} <= set(dag.task_ids)
    assert set(dag.params.keys()) >= {"s3_bucket", "s3_prefix", "events_prefix", "chunk_size"}


@pytest.fixture
def ingestion(airflow_db, qode_conn_env, aws_conn_env):
    return _load("qode_interview_ingestion").dag


def test_run_lands_every_id_in_exactly_one_place_and_rerun_changes_nothing(
    ingestion, sandbox_dataset, s3_client, s3_bucket
):
    ids = sandbox_dataset.ids
    conf = {"interview_ids": ids, "s3_bucket": s3_bucket, "s3_prefix": PREFIX, "chunk_size": 25}
    run = _run(ingestion, conf)
    assert run.state == "success"

    objects = _objects(s3_client, s3_bucket)
    layout = LakeLayout(PREFIX)
    published, quarantined, bases = set(), set(), []
    for interview_id in ids:
        expected = sandbox_dataset.expected(interview_id)
        index = json.loads(_read(s3_client, s3_bucket, layout.index_key(interview_id)))
        if expected.verdict == "published":
            doc = sandbox_dataset.document(interview_id)
            role = encode_role(doc.get("mapped_role_title") or doc.get("role_title"))
            ts = doc.get("timestamp") or doc.get("event_timestamp")
            base = layout.interview_base(interview_id, interview_date(ts), role)
            assert index["state"] == "published" and index["key"] == base + "interview.json"
            assert _read(s3_client, s3_bucket, index["key"]) == sandbox_dataset.body(interview_id)
            bases.append(base)
            assets = [k for k in objects if k.startswith(base + "assets/")]
            if doc.get("identity_screenshot_path"):
                [asset] = assets
                assert _read(s3_client, s3_bucket, asset) == sandbox_dataset.asset(interview_id)
            else:
                assert assets == []
            published.add(interview_id)
        else:
            assert index["state"] == "quarantined", interview_id
            qkey = index["quarantine"]["key"]
            assert _read(s3_client, s3_bucket, qkey) == sandbox_dataset.body(interview_id)
            reasons = json.loads(
                _read(s3_client, s3_bucket, qkey.replace("interview.json", "reasons.json"))
            )
            assert sorted(reasons["failed_rules"]) == sorted(expected.failed_rules)
            assert reasons["reasons"] and reasons["run_id"]
            quarantined.add(interview_id)
    # Nothing under interviews/ but the published copies (no stray assets of quarantined ones).
    assert [
        k
        for k in objects
        if k.startswith(f"{PREFIX}/interviews/") and not k.startswith(tuple(bases))
    ] == []
    # Exactly one interview.json per id, in one place.
    jsons = [k for k in objects if k.endswith("/interview.json")]
    assert len(jsons) == len(ids)
    assert published and quarantined and published | quarantined == set(ids)
    manifests = [k for k in objects if k.startswith(f"{PREFIX}/_manifests/")]
    assert len(manifests) == 3  # 67 ids in chunks of 25

    # The summary XCom of each chunk is small and points at its manifest.
    land = run.get_task_instances()
    assert {ti.task_id for ti in land if ti.state == "success"} >= {"land_chunk", "summarize"}

    rerun = _run(ingestion, conf)
    assert rerun.state == "success"
    after = _objects(s3_client, s3_bucket)

    def data(listing: dict[str, str]) -> set[str]:
        return {k for k in listing if "/_manifests/" not in k and "/_quality/" not in k}

    # Same keys (no duplicates, nothing moved); published objects byte-identical. Quarantine
    # reasons record the latest run, so only their keys must stay put.
    assert data(after) == data(objects)
    published_keys = {k for k in objects if k.startswith(f"{PREFIX}/interviews/")}
    assert {k: after[k] for k in published_keys} == {k: objects[k] for k in published_keys}
    assert summary_of(rerun)["unchanged"] == len(published)


def test_hostile_ids_in_conf_are_quarantined_not_fatal(
    ingestion, sandbox_dataset, s3_client, s3_bucket
):
    good = sandbox_dataset.ids[0]
    hostile = ["../../etc/passwd", "a b", "x/y"]
    conf = {"interview_ids": [good, *hostile], "s3_bucket": s3_bucket, "s3_prefix": PREFIX}
    assert _run(ingestion, conf).state == "success"
    objects = _objects(s3_client, s3_bucket)
    assert all(".." not in k and " " not in k for k in objects)
    reasons = [
        json.loads(_read(s3_client, s3_bucket, k))
        for k in objects
        if k.endswith("reasons.json") and "_invalid-id-" in k
    ]
    assert sorted(r["interview_id"] for r in reasons) == sorted(hostile)
    assert all(r["failed_rules"] == ["QR-LIFE-02"] for r in reasons)


def test_ids_come_from_the_days_event_files(ingestion, sandbox_dataset, s3_client, s3_bucket):
    day = sandbox_dataset.dates()[0]
    s3_client.put_object(
        Bucket=s3_bucket,
        Key=f"events/dt={day}/part-0.jsonl",
        Body=sandbox_dataset.events_jsonl(day),
    )
    s3_client.put_object(Bucket=s3_bucket, Key=f"events/dt={day}/part-1.jsonl", Body=b"{broken\n")
    finished = {e["interviewId"] for e in sandbox_dataset.events(day) if e.get("isTerminal")}
    conf = {"s3_bucket": s3_bucket, "s3_prefix": PREFIX, "events_prefix": f"events/dt={day}/"}
    # A manual run's data interval is the day before its logical date.
    logical = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    run = _run(ingestion, conf, logical_date=logical)
    assert run.state == "success"
    layout = LakeLayout(PREFIX)
    objects = _objects(s3_client, s3_bucket)
    indexed = {k.rsplit("/", 1)[1].removesuffix(".json") for k in objects if "/_index/" in k}
    assert finished and indexed == finished
    assert all(layout.index_key(i) in objects for i in finished)
