"""The curate task in real DAG runs: every curated partition ends exact, whatever the runs did.

Real Airflow (``dag.test``, SQLite DB), the stand-in serving a replay directory the tests edit
between runs (a move, a quarantine exit) and moto's S3 server. "Exact" is checked two ways after
each run: every partition's files equal the bytes a fresh rebuild from its raw partition gives
(``build_files`` over the published raw, in memory), and, independently of the curator, the
interviews table of each ``dt`` holds exactly the ids the index publishes there, once each, with
the sha256 of the bytes the stand-in serves now (no stale, duplicate or missing row).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_qode.lake.curated import TABLES, Curator, build_files
from airflow_provider_qode.lake.curated.parquet import read_parquet_bytes
from airflow_provider_qode.lake.layout import LakeLayout, interview_date
from airflow_provider_qode.lake.store import ObjectStore
from airflow_provider_qode.sandbox.generator import SandboxDataset
from tests.dags.test_ingestion_dag import _load
from tests.fixtures.sandbox import point_qode_conn

PREFIX = "curated-lake"
DATASET = SandboxDataset(seed=23, count=12, broken_share=0.0, alias_share=0.0)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def replay(tmp_path: Path, sandbox_factory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in serving ``tmp_path/replay`` (edited between runs), qode_default pointing at it."""
    folder = tmp_path / "replay"
    DATASET.dump(folder)
    server = sandbox_factory(folder)
    point_qode_conn(monkeypatch, server.base_url, max_retries=1, timeout=5)
    return folder


@pytest.fixture
def ingestion(airflow_db, replay, aws_conn_env):
    return _load("qode_interview_ingestion").dag


def _doc(folder: Path, interview_id: str) -> dict[str, Any]:
    return json.loads((folder / f"{interview_id}.json").read_bytes())


def _write(folder: Path, interview_id: str, doc: dict[str, Any]) -> None:
    (folder / f"{interview_id}.json").write_bytes(json.dumps(doc, indent=1).encode())


def _dt(folder: Path, interview_id: str) -> str:
    return interview_date(_doc(folder, interview_id)["timestamp"])


def _conf(bucket: str, ids: list[str]) -> dict[str, Any]:
    return {"interview_ids": ids, "s3_bucket": bucket, "s3_prefix": PREFIX, "chunk_size": 5}


def _ti(run, task_id: str):
    [ti] = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    return ti


def _curated(s3_client, bucket: str) -> dict[str, str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{PREFIX}/curated/"
    )
    return {o["Key"]: o["ETag"] for p in pages for o in p.get("Contents", [])}


def _published(s3_client, bucket: str) -> dict[str, dict[str, Any]]:
    """Every id the index publishes now: its index document."""
    pages = s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{PREFIX}/_index/"
    )
    docs = {}
    for page in pages:
        for obj in page.get("Contents", []):
            doc = json.loads(s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            if doc.get("state") == "published":
                docs[doc["interview_id"]] = doc
    return docs


def assert_curated_exact(s3_client, bucket: str, folder: Path) -> dict[str, set[str]]:
    """Both checks of the module docstring; returns the published ids per dt."""
    store = ObjectStore(s3_client, bucket)
    curator = Curator(store, PREFIX)
    layout = LakeLayout(PREFIX)
    published = _published(s3_client, bucket)
    by_dt: dict[str, set[str]] = {}
    for interview_id, doc in published.items():
        assert doc["dt"] == _dt(folder, interview_id), interview_id  # the index follows the API
        by_dt.setdefault(doc["dt"], set()).add(interview_id)
    dts = curator.all_dts()
    assert set(by_dt) <= set(dts)
    for dt in dts:
        desired, _ = build_files(curator.reader.read(dt).interviews)
        for table in TABLES:
            found = store.get(layout.curated_key(table, dt))
            assert (found[0] if found else None) == desired.get(table), (table, dt)
        if dt not in by_dt:
            assert desired == {}, dt  # a partition with no interview left has no files
            continue
        body, _ = store.get(layout.curated_key("interviews", dt)) or (b"", "")
        rows = read_parquet_bytes(body).to_pylist()
        ids = [row["interview_id"] for row in rows]
        assert sorted(ids) == sorted(by_dt[dt]), dt  # no duplicate, no stale, no missing row
        for row in rows:
            served = (folder / f"{row['interview_id']}.json").read_bytes()
            assert row["raw_sha256"] == hashlib.sha256(served).hexdigest()
            assert row["raw_key"] == published[row["interview_id"]]["key"]
    return by_dt


def test_curated_partitions_stay_exact_across_rerun_move_and_quarantine_exit(
    ingestion, replay, s3_client, s3_bucket
):
    ids = DATASET.ids
    moved_date, moved_role, leaves_quarantine = ids[0], ids[1], ids[2]
    good = (replay / f"{leaves_quarantine}.json").read_bytes()
    _write(replay, leaves_quarantine, {**json.loads(good), "aggregated_score": 140})

    run = ingestion.test(logical_date=datetime.now(UTC), run_conf=_conf(s3_bucket, ids))
    assert run.state == "success"
    assert _ti(run, "curate").state == "success"
    by_dt = assert_curated_exact(s3_client, s3_bucket, replay)
    assert leaves_quarantine not in set().union(*by_dt.values())
    curated = _ti(run, "curate").xcom_pull(task_ids="curate")
    assert curated["changed"] == sorted(by_dt) and curated["rows"]["interviews"] == len(ids) - 1
    tables = _curated(s3_client, s3_bucket)
    assert len(tables) == len(TABLES) * len(by_dt)

    # A rerun changes nothing: the curate task is skipped, the tables are untouched.
    rerun = ingestion.test(logical_date=datetime.now(UTC), run_conf=_conf(s3_bucket, ids))
    assert rerun.state == "success"
    assert _ti(rerun, "curate").state == "skipped"
    assert _ti(rerun, "summarize").state == "success"  # the skip does not stop the summary
    assert _curated(s3_client, s3_bucket) == tables

    # One interview moves to another date, one to another role, one leaves quarantine.
    old_dt = _dt(replay, moved_date)
    doc = _doc(replay, moved_date)
    doc["timestamp"] = "2025-10-02T09:30:00Z"
    _write(replay, moved_date, doc)
    doc = _doc(replay, moved_role)
    doc["mapped_role_title"] = "Staff Platform Engineer"
    _write(replay, moved_role, doc)
    (replay / f"{leaves_quarantine}.json").write_bytes(good)
    touched = {old_dt, "2025-10-02", _dt(replay, moved_role), _dt(replay, leaves_quarantine)}

    third = ingestion.test(logical_date=datetime.now(UTC), run_conf=_conf(s3_bucket, ids))
    assert third.state == "success"
    land = [ti for ti in third.get_task_instances() if ti.task_id == "land_chunk"]
    reported = set()
    for ti in land:
        reported.update(
            ti.xcom_pull(task_ids="land_chunk", map_indexes=ti.map_index)["touched_dts"]
        )
    assert reported == touched
    curated = _ti(third, "curate").xcom_pull(task_ids="curate")
    assert curated["partitions"] == len(touched) and curated["changed"] == sorted(touched)
    by_dt = assert_curated_exact(s3_client, s3_bucket, replay)
    assert moved_date in by_dt["2025-10-02"] and moved_date not in by_dt.get(old_dt, set())
    assert leaves_quarantine in by_dt[_dt(replay, leaves_quarantine)]


LAND = """
import json, sys
from datetime import datetime
from tests.dags.test_ingestion_dag import _load
dag = _load("qode_interview_ingestion").dag
run = dag.test(logical_date=datetime.fromisoformat(sys.argv[1]), run_conf=json.loads(sys.argv[2]))
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances() if ti.map_index < 1}
print(json.dumps({"state": str(run.state), "tasks": states}))
"""


def _start_landing(tmp_path: Path, name: str, logical: datetime, conf: dict[str, Any]):
    """A DAG run in a process of its own, with its own copy of the migrated metadata DB."""
    home = tmp_path / name
    home.mkdir()
    db_path = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    shutil.copy(db_path, home / "airflow.db")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "QODE_TEST_AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    args = [sys.executable, "-c", LAND, logical.isoformat(), json.dumps(conf)]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_concurrent_landings_on_overlapping_ids_leave_every_partition_exact(
    ingestion, replay, s3_client, s3_bucket, tmp_path
):
    ids = DATASET.ids
    first = ingestion.test(logical_date=datetime.now(UTC), run_conf=_conf(s3_bucket, ids[:8]))
    assert first.state == "success"
    # Then the overlap changes between the two fetches' views: dates and roles move.
    for n, interview_id in enumerate(ids[4:8]):
        doc = _doc(replay, interview_id)
        if n % 2:
            doc["timestamp"] = f"2025-10-0{n + 1}T08:00:00Z"
        else:
            doc["mapped_role_title"] = f"Moved Role {n}"
        _write(replay, interview_id, doc)
    now = datetime.now(UTC)
    runs = [
        _start_landing(tmp_path, "a", now, _conf(s3_bucket, ids[:8])),
        _start_landing(tmp_path, "b", now + timedelta(seconds=1), _conf(s3_bucket, ids[4:])),
    ]
    for process in runs:
        out, _ = process.communicate(timeout=360)
        assert process.returncode == 0
        result = json.loads(out.strip().splitlines()[-1])
        assert result["state"] == "success", result
        assert result["tasks"]["curate"] in ("success", "skipped"), result
    by_dt = assert_curated_exact(s3_client, s3_bucket, replay)
    assert set().union(*by_dt.values()) == set(ids)


def test_curate_runs_between_the_landing_chunks_and_the_summary(airflow_db):
    """As docs/lake.md says: after every chunk, all_success; summarize after it, none_failed,
    so a failed curate withholds the run's Asset event and a skipped one does not."""
    dag = _load("qode_interview_ingestion").dag
    curate, summarize = dag.get_task("curate"), dag.get_task("summarize")
    assert curate.upstream_task_ids == {"land_chunk"}
    assert curate.trigger_rule == "all_success"
    assert summarize.upstream_task_ids == {"land_chunk", "curate"}
    assert summarize.trigger_rule == "none_failed"
    assert curate.template_fields == ("s3_bucket", "s3_prefix", "summaries", "dts", "aws_conn_id")


def test_operator_takes_dts_refuses_non_dates_and_skips_with_nothing_to_do(
    airflow_db, aws_conn_env, s3_client, s3_bucket
):
    from airflow.sdk.exceptions import AirflowSkipException

    from airflow_provider_qode.exceptions import QodeConfigError
    from airflow_provider_qode.operators.curate import QodeCurateOperator

    def operator(**kwargs: Any) -> QodeCurateOperator:
        return QodeCurateOperator(task_id="c", s3_bucket=s3_bucket, s3_prefix=PREFIX, **kwargs)

    nothing = [None, {"touched_dts": []}, {"published": 3}]  # failed, unchanged, older chunks
    with pytest.raises(AirflowSkipException):
        operator(summaries=nothing).execute({})  # type: ignore[arg-type]
    for bad in ("2025-13-01", "../x", "2025-1-1"):
        with pytest.raises(QodeConfigError, match="dts"):
            operator(dts=[bad]).execute({})  # type: ignore[arg-type]
    # A backfill of a date with no raw data: rebuilt (to nothing), reported, no file written.
    result = operator(dts=["2025-11-20"], summaries=nothing).execute({})  # type: ignore[arg-type]
    assert result["partitions"] == 1 and result["changed"] == [] and result["written"] == 0
    assert _curated(s3_client, s3_bucket) == {}


def test_lineage_names_the_raw_prefix_in_and_each_curated_table_out(
    airflow_db, replay, aws_conn_env, s3_client, s3_bucket
):
    from airflow.providers.openlineage.extractors.base import DefaultExtractor

    from airflow_provider_qode.operators.curate import QodeCurateOperator

    dag = _load("qode_interview_ingestion").dag
    ids = DATASET.ids[:3]
    assert dag.test(logical_date=datetime.now(UTC), run_conf=_conf(s3_bucket, ids)).state == (
        "success"
    )
    dts = sorted({_dt(replay, i) for i in ids})
    operator = QodeCurateOperator(task_id="c", s3_bucket=s3_bucket, s3_prefix=PREFIX, dts=dts)
    skipped = DefaultExtractor(operator).extract_on_complete(None)
    assert skipped is not None and (skipped.inputs, skipped.outputs) == ([], [])
    result = operator.execute({})  # type: ignore[arg-type]
    lineage = DefaultExtractor(operator).extract_on_complete(None)
    assert lineage is not None
    namespace = f"s3://{s3_bucket}"
    assert [(i.namespace, i.name) for i in lineage.inputs] == [(namespace, f"{PREFIX}/interviews")]
    assert [(o.namespace, o.name) for o in lineage.outputs] == [
        (namespace, f"{PREFIX}/curated/{table}") for table in TABLES
    ]
    rows = {
        o.name.rsplit("/", 1)[1]: o.outputFacets["outputStatistics"].rowCount
        for o in lineage.outputs
    }
    assert rows == result["rows"] and rows["interviews"] == len(ids)
