"""The curated layer against a real S3 endpoint: raw landed by the real ingest path, tables
rebuilt by the curator and read back by pyarrow's S3 filesystem and by DuckDB with httpfs."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from airflow_provider_qode.hooks.qode import QodeHook
from airflow_provider_qode.ingest import ingest_chunk
from airflow_provider_qode.lake.curated import Curator
from airflow_provider_qode.lake.curated.curator import build_files
from airflow_provider_qode.lake.curated.schemas import DT
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.models import parse_interview
from airflow_provider_qode.sandbox.generator import SandboxDataset
from tests.fixtures.sandbox import point_qode_conn

PREFIX = "lake"
LAYOUT = LakeLayout(PREFIX)
HIVE_DT = pads.partitioning(pa.schema([DT]), flavor="hive")
DATASET = SandboxDataset(seed=23, count=12, broken_share=0.0, days=2, alias_share=0.5)


@pytest.fixture
def replay(tmp_path: Path, sandbox_factory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in serving ``tmp_path`` (edit files between runs) and a qode_default to it."""
    DATASET.dump(tmp_path)
    server = sandbox_factory(tmp_path)
    point_qode_conn(monkeypatch, server.base_url, max_retries=1, timeout=5)
    return tmp_path


def land(s3_client, bucket: str, ids: list[str], run_id: str = "run-1", chunk: str = "chunk-0"):
    writer = LakeWriter(
        s3_client,
        bucket,
        PREFIX,
        dag_id="test",
        run_id=run_id,
        chunk=chunk,
        run_date="2025-11-30",
    )
    with QodeHook("qode_default") as hook:
        return ingest_chunk(hook, writer, ids)


def curated_files(s3_client, bucket: str) -> dict[str, bytes]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{PREFIX}/curated/"
    )
    keys = sorted(o["Key"] for p in pages for o in p.get("Contents", []))
    return {k: s3_client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def fresh_rebuild(s3_client, bucket: str) -> dict[str, bytes]:
    """What every partition should hold: files built from raw by a new curator, not written."""
    curator = Curator.from_client(s3_client, bucket, PREFIX)
    files = {}
    for dt in curator.all_dts():
        built, _ = build_files(curator.reader.read(dt))
        files.update({LAYOUT.curated_key(t, dt): body for t, body in built.items()})
    return files


def _doc(folder: Path, interview_id: str) -> dict:
    return json.loads((folder / f"{interview_id}.json").read_bytes())


def _write(folder: Path, interview_id: str, doc: dict) -> None:
    (folder / f"{interview_id}.json").write_bytes(json.dumps(doc, indent=1).encode())


def test_rebuild_writes_typed_tables_readable_by_pyarrow_s3(
    replay, s3_client, s3_bucket, s3_endpoint
):
    summary = land(s3_client, s3_bucket, DATASET.ids)
    assert summary.published == len(DATASET.ids)
    curator = Curator.from_client(s3_client, s3_bucket, PREFIX)
    dts = curator.all_dts()
    assert dts == sorted({d.isoformat() for d in DATASET.dates()})
    result = curator.rebuild_many(dts)
    assert result.changed == dts and result.rows["interviews"] == len(DATASET.ids)

    url = urlsplit(s3_endpoint)
    fs = pafs.S3FileSystem(
        endpoint_override=url.netloc,
        scheme=url.scheme,
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
    )
    table = pq.read_table(
        f"{s3_bucket}/{PREFIX}/curated/interviews/", filesystem=fs, partitioning=HIVE_DT
    )
    rows = {r["interview_id"]: r for r in table.to_pylist()}
    assert set(rows) == set(DATASET.ids)
    for interview_id in DATASET.ids:
        model = parse_interview(DATASET.body(interview_id))
        row = rows[interview_id]
        assert row["aggregated_score"] == model.aggregated_score
        assert row["duration"] == model.duration
        assert row["dt"] == model.timestamp[:10]
        assert row["asset_count"] == len(model.asset_paths)
    criteria = pq.read_table(
        f"{s3_bucket}/{PREFIX}/curated/criteria/", filesystem=fs, partitioning=HIVE_DT
    )
    assert criteria.num_rows == result.rows["criteria"] > 0

    # A rerun changes nothing: same bytes, no write.
    before = curated_files(s3_client, s3_bucket)
    again = curator.rebuild_many(curator.all_dts())
    assert again.changed == [] and all(p.rounds == 1 for p in again.partitions)
    assert curated_files(s3_client, s3_bucket) == before == fresh_rebuild(s3_client, s3_bucket)
