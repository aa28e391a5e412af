"""The curated layer against a real S3 endpoint: raw landed by the real ingest path, tables
rebuilt by the curator and read back by pyarrow's S3 filesystem and by DuckDB with httpfs."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from airflow_provider_qode.hooks.qode import QodeHook
from airflow_provider_qode.ingest import ingest_chunk
from airflow_provider_qode.lake.curated import TABLES, CurateError, Curator
from airflow_provider_qode.lake.curated.curator import build_files
from airflow_provider_qode.lake.curated.schemas import DT
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.models import parse_interview
from airflow_provider_qode.sandbox.generator import SandboxDataset
from airflow_provider_qode.sandbox.query import duckdb_over_s3
from tests.fixtures.sandbox import point_qode_conn

if TYPE_CHECKING:
    from airflow_provider_qode.lake.writer import PublishResult

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


def lake_writer(s3_client, bucket: str, run_id: str, chunk: str = "c0") -> LakeWriter:
    return LakeWriter(
        s3_client,
        bucket,
        PREFIX,
        dag_id="test",
        run_id=run_id,
        chunk=chunk,
        run_date="2025-11-30",
    )


def land(s3_client, bucket: str, ids: list[str], run_id: str = "run-1"):
    with QodeHook("qode_default") as hook:
        return ingest_chunk(hook, lake_writer(s3_client, bucket, run_id), ids)


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
        built, _ = build_files(curator.reader.read(dt).interviews)
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

    # DuckDB with httpfs (from its wheel, offline) reads the same tables over S3.
    con = duckdb_over_s3(s3_endpoint, "testing", "testing")
    got = con.execute(
        "SELECT role, count(*), avg(aggregated_score), min(dt) FROM read_parquet("
        f"'s3://{s3_bucket}/{PREFIX}/curated/interviews/*/*.parquet', hive_partitioning=true) "
        "GROUP BY role ORDER BY role"
    ).fetchall()
    by_role: dict[str, list[float]] = {}
    for row in rows.values():
        by_role.setdefault(row["role"], []).append(row["aggregated_score"])
    assert [(r, n) for r, n, _, _ in got] == [(r, len(v)) for r, v in sorted(by_role.items())]
    for role, _, mean, _ in got:
        scores = [x for x in by_role[role] if x is not None]  # avg() skips NULL, as here
        assert mean == (pytest.approx(sum(scores) / len(scores)) if scores else None)
    (n_criteria,) = con.execute(
        f"SELECT count(*) FROM read_parquet('s3://{s3_bucket}/{PREFIX}/curated/criteria/*/*.parquet')"
    ).fetchone()
    assert n_criteria == result.rows["criteria"]

    # A rerun changes nothing: same bytes, no write.
    before = curated_files(s3_client, s3_bucket)
    again = curator.rebuild_many(curator.all_dts())
    assert again.changed == [] and all(p.rounds == 1 for p in again.partitions)
    assert curated_files(s3_client, s3_bucket) == before == fresh_rebuild(s3_client, s3_bucket)


# --- landing without the API: the real writer, bodies given ------------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "valid_ci_v2.json"
D1, D2 = "2025-11-20", "2025-11-21"


def body(interview_id: str, day: str = D1, **changes: Any) -> bytes:
    """The example interview as ``interview_id`` on ``day`` with some fields changed."""
    doc = json.loads(EXAMPLE.read_bytes())
    doc.update(interview_id=interview_id, timestamp=f"{day}T10:00:00Z", **changes)
    return json.dumps(doc).encode()


def publish(
    s3_client, bucket: str, bodies: dict[str, bytes], run_id: str = "run", chunk: str = "c0"
) -> tuple[list[PublishResult], str]:
    """Land ``bodies`` as one chunk with the real writer; (results, manifest key)."""
    writer = lake_writer(s3_client, bucket, run_id, chunk)
    models = {i: parse_interview(b) for i, b in bodies.items()}
    writer.begin(models.items())
    results = [writer.publish(i, b, models[i]) for i, b in bodies.items()]
    return results, writer.write_manifest()


def quarantine(s3_client, bucket: str, interview_id: str, raw: bytes, run_id: str) -> str:
    writer = lake_writer(s3_client, bucket, run_id)
    writer.begin([])
    writer.quarantine(interview_id, raw, ["QR-SCORE-01"], ["QR-SCORE-01: out of range"])
    return writer.write_manifest()


def table_rows(s3_client, bucket: str, table: str, dt: str) -> list[dict[str, Any]]:
    found = s3_client.list_objects_v2(Bucket=bucket, Prefix=LAYOUT.curated_key(table, dt))
    if not found.get("Contents"):
        return []
    data = s3_client.get_object(Bucket=bucket, Key=LAYOUT.curated_key(table, dt))["Body"].read()
    return pq.read_table(pa.BufferReader(data)).to_pylist()


def ids_in(s3_client, bucket: str, dt: str) -> list[str]:
    return [r["interview_id"] for r in table_rows(s3_client, bucket, "interviews", dt)]


@contextlib.contextmanager
def counting(s3_client, operation: str) -> Iterator[list[str]]:
    """The keys of every ``operation`` request (e.g. GetObject) the client sends meanwhile."""
    keys: list[str] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        keys.append(params["Key"])

    s3_client.meta.events.register(f"provide-client-params.s3.{operation}", note)
    try:
        yield keys
    finally:
        s3_client.meta.events.unregister(f"provide-client-params.s3.{operation}", note)


def counting_puts(s3_client) -> contextlib.AbstractContextManager[list[str]]:
    """The keys of every PutObject the client sends meanwhile."""
    return counting(s3_client, "PutObject")


def raw_reads(keys: list[str]) -> tuple[list[str], list[str]]:
    """(index documents, interview.json bodies) among the keys read."""
    index = [k for k in keys if k.startswith(f"{PREFIX}/_index/")]
    return index, [k for k in keys if k.endswith("/interview.json")]


def assert_exact(s3_client, bucket: str) -> None:
    """Every curated file equals a fresh rebuild from raw, and no file is left over."""
    assert curated_files(s3_client, bucket) == fresh_rebuild(s3_client, bucket)


@pytest.fixture(params=["honoured", "ignored"])
def conditional(request) -> bool:
    """Run against conditional writes, and as if the store ignored them (plain PUTs)."""
    return request.param == "honoured"


def test_rerun_writes_nothing_and_gives_the_same_bytes(s3_client, s3_bucket, conditional):
    _, manifest = publish(s3_client, s3_bucket, {f"i{n}": body(f"i{n}") for n in range(4)})
    curator = Curator.from_client(s3_client, s3_bucket, PREFIX, conditional_writes=conditional)
    assert curator.touched_dts([manifest]) == [D1]
    first = curator.rebuild(D1)
    assert first.changed and first.rows["interviews"] == 4 and first.rounds == 2
    assert sorted(first.written) == sorted(LAYOUT.curated_key(t, D1) for t in TABLES)
    before = curated_files(s3_client, s3_bucket)
    with counting_puts(s3_client) as puts:
        again = Curator.from_client(
            s3_client, s3_bucket, PREFIX, conditional_writes=conditional
        ).rebuild(D1)
    assert puts == [] and not again.changed and again.written == () and again.rounds == 1
    assert curated_files(s3_client, s3_bucket) == before
    assert_exact(s3_client, s3_bucket)


def test_move_to_another_date_rebuilds_both_without_duplicate_or_stale_rows(s3_client, s3_bucket):
    publish(s3_client, s3_bucket, {"a": body("a"), "b": body("b")}, run_id="r1")
    curator = Curator.from_client(s3_client, s3_bucket, PREFIX)
    curator.rebuild_many([D1])
    assert ids_in(s3_client, s3_bucket, D1) == ["a", "b"]

    results, manifest = publish(s3_client, s3_bucket, {"b": body("b", D2)}, run_id="r2")
    assert results[0].removed  # the old copy went
    touched = curator.touched_dts([manifest])
    assert touched == [D1, D2]
    summary = curator.rebuild_many(touched)
    assert summary.changed == [D1, D2]
    assert ids_in(s3_client, s3_bucket, D1) == ["a"]
    assert ids_in(s3_client, s3_bucket, D2) == ["b"]
    for table in ("criteria", "skills"):
        assert {r["interview_id"] for r in table_rows(s3_client, s3_bucket, table, D2)} == {"b"}
        assert {r["interview_id"] for r in table_rows(s3_client, s3_bucket, table, D1)} == {"a"}

    # A role change on the same date: one row, the new role, the new key.
    publish(s3_client, s3_bucket, {"a": body("a", mapped_role_title="Data Engineer")}, "r3")
    curator.rebuild(D1)
    (row,) = table_rows(s3_client, s3_bucket, "interviews", D1)
    assert row["role"] == "data-engineer" and "/role=data-engineer/a/" in row["raw_key"]

    # Everything leaves D1: its files go.
    _, manifest = publish(s3_client, s3_bucket, {"a": body("a", D2)}, run_id="r4")
    result = curator.rebuild_many(curator.touched_dts([manifest]))
    assert [p.dt for p in result.partitions] == [D1, D2]
    assert sorted(result.partitions[0].deleted) == sorted(LAYOUT.curated_key(t, D1) for t in TABLES)
    assert ids_in(s3_client, s3_bucket, D2) == ["a", "b"]
    assert curator.all_dts() == [D2]
    assert_exact(s3_client, s3_bucket)


def test_interview_leaving_quarantine_appears_once(s3_client, s3_bucket):
    curator = Curator.from_client(s3_client, s3_bucket, PREFIX)
    bad = body("q", aggregated_score=140)
    manifest = quarantine(s3_client, s3_bucket, "q", bad, "r1")
    assert curator.touched_dts([manifest]) == []  # quarantine is no curated partition
    with pytest.raises(CurateError, match=r"_manifests/nope\.json"):
        curator.touched_dts([f"{PREFIX}/_manifests/nope.json"])
    assert curator.rebuild(D1).rows["interviews"] == 0
    assert curated_files(s3_client, s3_bucket) == {}

    _, manifest = publish(s3_client, s3_bucket, {"q": body("q")}, run_id="r2")
    assert curator.rebuild_many(curator.touched_dts([manifest])).changed == [D1]
    assert ids_in(s3_client, s3_bucket, D1) == ["q"]

    # Failing again later keeps the last good copy published: its row stays.
    quarantine(s3_client, s3_bucket, "q", bad, "r3")
    assert not curator.rebuild(D1).changed
    assert ids_in(s3_client, s3_bucket, D1) == ["q"]
    assert_exact(s3_client, s3_bucket)


def test_only_the_copy_the_index_publishes_counts(s3_client, s3_bucket):
    publish(s3_client, s3_bucket, {"a": body("a"), "b": body("b")})
    # A leftover of a crashed attempt, and the new copy of a move not yet switched in the index.
    for key, raw in {
        LAYOUT.interview_key(LAYOUT.interview_base("ghost", D1, "unknown")): body("ghost"),
        LAYOUT.interview_key(LAYOUT.interview_base("b", D1, "data-engineer")): body(
            "b", mapped_role_title="Data Engineer"
        ),
    }.items():
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=raw)
    Curator.from_client(s3_client, s3_bucket, PREFIX).rebuild(D1)
    rows = table_rows(s3_client, s3_bucket, "interviews", D1)
    assert [(r["interview_id"], r["role"]) for r in rows] == [
        ("a", "frontend-developer"),
        ("b", "frontend-developer"),
    ]


def test_a_rerun_reads_no_raw_body_and_a_change_reads_only_its_own(s3_client, s3_bucket):
    """The sidecar vouches for the copies the files hold: a rerun GETs no index and no JSON; a
    new copy of one interview costs its index and its body; the files equal a cold rebuild."""
    ids = [f"i{n}" for n in range(5)]
    publish(s3_client, s3_bucket, {i: body(i) for i in ids}, run_id="r1")
    curator = Curator.from_client(s3_client, s3_bucket, PREFIX)
    with counting(s3_client, "GetObject") as gets:
        curator.rebuild(D1)
    assert [len(k) for k in raw_reads(gets)] == [5, 5]  # cold: every index and body, once
    with counting(s3_client, "GetObject") as gets:
        again = Curator.from_client(s3_client, s3_bucket, PREFIX).rebuild(D1)
    assert raw_reads(gets) == ([], []) and not again.changed

    publish(s3_client, s3_bucket, {"i2": body("i2", duration=999)}, run_id="r2")
    with counting(s3_client, "GetObject") as gets:
        result = Curator.from_client(s3_client, s3_bucket, PREFIX).rebuild(D1)
    assert result.changed and result.rounds == 2
    key = LAYOUT.interview_key(LAYOUT.interview_base("i2", D1, "frontend-developer"))
    assert raw_reads(gets) == ([LAYOUT.index_key("i2")], [key])
    assert {
        r["interview_id"]: r["duration"] for r in table_rows(s3_client, s3_bucket, "interviews", D1)
    }["i2"] == 999
    assert_exact(s3_client, s3_bucket)  # byte for byte what a cold rebuild builds


def test_a_sidecar_that_does_not_describe_the_files_is_ignored(s3_client, s3_bucket):
    """A stale cache entry (the files changed under it, or the copy's ETag did) is a miss."""
    publish(s3_client, s3_bucket, {"a": body("a"), "b": body("b")}, run_id="r1")
    Curator.from_client(s3_client, s3_bucket, PREFIX).rebuild(D1)
    # Files of other rows under the old sidecar: trusting it would keep these rows.
    wrong, _ = build_files([{"interviews": [], "criteria": [], "skills": []}])
    for table, data in wrong.items():
        s3_client.put_object(Bucket=s3_bucket, Key=LAYOUT.curated_key(table, D1), Body=data)
    # And a copy rewritten in place (same key, new ETag) behind the sidecar's back.
    key = LAYOUT.interview_key(LAYOUT.interview_base("b", D1, "frontend-developer"))
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=body("b", duration=77))
    result = Curator.from_client(s3_client, s3_bucket, PREFIX).rebuild(D1)
    assert result.rows["interviews"] == 2
    durations = {
        r["interview_id"]: r["duration"] for r in table_rows(s3_client, s3_bucket, "interviews", D1)
    }
    assert durations["b"] == 77
    assert_exact(s3_client, s3_bucket)
    with counting(s3_client, "GetObject") as gets:  # the rewritten copy is now vouched for
        Curator.from_client(s3_client, s3_bucket, PREFIX).rebuild(D1)
    assert raw_reads(gets) == ([], [])


def test_a_copy_a_journal_names_is_checked_even_when_the_cache_vouches(s3_client, s3_bucket):
    """A move that crashed after switching the index, before removing the old copy: the old
    copy is in the sidecar, but the (dead) journal names the id, so its index is read and the
    copy is left out."""
    publish(s3_client, s3_bucket, {"a": body("a"), "b": body("b")}, run_id="r1")
    curator = Curator.from_client(s3_client, s3_bucket, PREFIX)
    curator.rebuild(D1)
    base = LAYOUT.interview_base("a", D2, "frontend-developer")
    moved = body("a", D2)
    s3_client.put_object(Bucket=s3_bucket, Key=LAYOUT.interview_key(base), Body=moved)
    journal = {
        "owner": "crashed",
        "expires_at": "2020-01-01T00:00:00+00:00",
        "directories": {"a": base},
        "contested": {},
    }
    journal_key = LAYOUT.journal_key("test", "crashed", "c0", "crashed")
    s3_client.put_object(Bucket=s3_bucket, Key=journal_key, Body=json.dumps(journal).encode())
    index = json.loads(
        s3_client.get_object(Bucket=s3_bucket, Key=LAYOUT.index_key("a"))["Body"].read()
    )
    index.update(key=LAYOUT.interview_key(base), base=base, dt=D2)
    s3_client.put_object(
        Bucket=s3_bucket, Key=LAYOUT.index_key("a"), Body=json.dumps(index).encode()
    )
    with counting(s3_client, "GetObject") as gets:
        curator.rebuild_many([D1, D2])
    assert LAYOUT.index_key("a") in gets and LAYOUT.index_key("b") not in gets
    assert ids_in(s3_client, s3_bucket, D1) == ["b"]
    assert ids_in(s3_client, s3_bucket, D2) == ["a"]
    assert_exact(s3_client, s3_bucket)


def test_rows_staged_by_the_landing_give_the_cold_bytes_without_reading_raw(
    replay, s3_client, s3_bucket
):
    """The landing task stages its rows (a fragment per date); the rebuild takes them for the
    copies whose key and ETag match the listing, reads no index and no body, deletes the
    fragments, and writes exactly what a cold rebuild writes. A fragment whose ETags no longer
    match (the copy was landed again) is a miss: that copy is read from raw."""
    land(s3_client, s3_bucket, DATASET.ids)
    fragments = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=f"{PREFIX}/_curated/fragments/")
    assert len(fragments["Contents"]) == len(DATASET.dates())
    curator = Curator.from_client(s3_client, s3_bucket, PREFIX)
    with counting(s3_client, "GetObject") as gets:
        curator.rebuild_many(curator.all_dts())
    assert raw_reads(gets) == ([], [])
    assert_exact(s3_client, s3_bucket)
    left = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=f"{PREFIX}/_curated/fragments/")
    assert "Contents" not in left

    # A stale fragment: the copy it describes was overwritten (new ETag) after staging.
    first = DATASET.ids[0]
    land(s3_client, s3_bucket, [first], run_id="run-2")  # unchanged: stages nothing
    doc = _doc(replay, first)
    doc["duration"] = (doc.get("duration") or 0) + 5
    _write(replay, first, doc)
    land(s3_client, s3_bucket, [first], run_id="run-3")  # stages the new copy
    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=f"{PREFIX}/interviews/")
    (key,) = [o["Key"] for o in listed["Contents"] if f"/{first}/interview.json" in o["Key"]]
    raw = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=raw + b" ")  # same rows, new ETag
    with counting(s3_client, "GetObject") as gets:
        curator.rebuild_many(curator.all_dts())
    assert raw_reads(gets)[1] == [key]
    assert_exact(s3_client, s3_bucket)


def test_a_lost_race_is_read_again_and_rebuilt(s3_client, s3_bucket, conditional):
    """Between this rebuild's read and its first write, a landing and another rebuild finish:
    the write is refused (or, without conditional writes, overwritten and checked) and the
    partition ends as a rebuild from the raw partition after that landing."""
    publish(s3_client, s3_bucket, {"a": body("a")}, run_id="r1")
    curator = Curator.from_client(s3_client, s3_bucket, PREFIX, conditional_writes=conditional)
    other_client = boto3_client(s3_client)
    raced: list[Any] = []

    def race(params: dict[str, Any], **_: Any) -> None:
        if raced or "/curated/" not in params["Key"]:
            return
        raced.append(params["Key"])
        publish(other_client, s3_bucket, {"b": body("b")}, run_id="r2")
        raced.append(Curator.from_client(other_client, s3_bucket, PREFIX).rebuild(D1))

    s3_client.meta.events.register("provide-client-params.s3.PutObject", race)
    try:
        result = curator.rebuild(D1)
    finally:
        s3_client.meta.events.unregister("provide-client-params.s3.PutObject", race)
    assert raced and raced[1].rows["interviews"] == 2
    assert result.rows["interviews"] == 2 and result.rounds >= 2
    assert ids_in(s3_client, s3_bucket, D1) == ["a", "b"]
    assert_exact(s3_client, s3_bucket)


def boto3_client(s3_client) -> Any:
    """A second client on the same endpoint (another process's view of the store)."""
    return boto3_client_at(s3_client.meta.endpoint_url)


def _dag(
    endpoint: str,
    bucket: str,
    run_id: str,
    bodies: dict[str, bytes],
    conditional: bool,
    start: threading.Barrier,
) -> None:
    """One DAG run: land a chunk, then rebuild the partitions its manifest touched."""
    own = boto3_client_at(endpoint)
    start.wait(30)
    _, manifest = publish(own, bucket, bodies, run_id=run_id)
    curator = Curator.from_client(own, bucket, PREFIX, conditional_writes=conditional)
    curator.rebuild_many(curator.touched_dts([manifest]))


def _churn(
    endpoint: str, bucket: str, conditional: bool, start: threading.Barrier, stop: threading.Event
) -> None:
    """Rebuild both partitions over and over, often from raw read before a landing finished."""
    own = boto3_client_at(endpoint)
    curator = Curator.from_client(own, bucket, PREFIX, conditional_writes=conditional)
    start.wait(30)
    while not stop.is_set():
        curator.rebuild_many([D1, D2])


def test_concurrent_landings_and_rebuilds_end_exact(atomic_s3_endpoint, conditional):
    """Two DAGs land overlapping ids (some moving date) at once, each rebuilding what it
    touched, while a third rebuilds every partition over and over: the end equals a rebuild."""
    client = boto3_client_at(atomic_s3_endpoint)
    bucket = f"race-{os.urandom(6).hex()}"
    client.create_bucket(Bucket=bucket)
    ids = [f"r{n:02d}" for n in range(12)]
    publish(client, bucket, {i: body(i) for i in ids}, run_id="seed")
    days = (D1, D2)
    for trial in range(2):
        first = {
            i: body(i, days[(n + trial) % 2], duration=100 + trial) for n, i in enumerate(ids[:8])
        }
        second = {
            i: body(i, days[(n + trial + 1) % 2], duration=200 + trial)
            for n, i in enumerate(ids[4:])
        }
        start, stop = threading.Barrier(3), threading.Event()
        with ThreadPoolExecutor(3) as pool:
            churn = pool.submit(_churn, atomic_s3_endpoint, bucket, conditional, start, stop)
            dags = [
                pool.submit(
                    _dag, atomic_s3_endpoint, bucket, f"{name}-{trial}", bodies, conditional, start
                )
                for name, bodies in (("daily", first), ("sensor", second))
            ]
            try:
                for future in dags:
                    future.result(timeout=180)  # an exception fails the test
            finally:
                stop.set()
            churn.result(timeout=180)
        # The DAGs' own rebuilds ran after their landings: the tables are exact without help.
        assert_exact(client, bucket)
        seen = ids_in(client, bucket, D1) + ids_in(client, bucket, D2)
        assert sorted(seen) == ids  # once each: no duplicate, none missing


def boto3_client_at(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def test_cli_rebuilds_every_partition_and_prints_one_line_each(
    s3_client, s3_bucket, s3_endpoint, capsys
):
    from airflow_provider_qode.cli import main

    publish(s3_client, s3_bucket, {"a": body("a"), "b": body("b", D2), "c": body("c", D2)})
    args = ["curate", "--bucket", s3_bucket, "--prefix", PREFIX, "--endpoint-url", s3_endpoint]
    assert main([*args, "--region", "us-east-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"dt={D1} changed interviews=1 criteria=")
    assert lines[1].startswith(f"dt={D2} changed interviews=2 criteria=")
    assert lines[2].startswith("total: 2 partitions, 2 changed, 0 failed; rows interviews=3")
    assert_exact(s3_client, s3_bucket)

    assert main([*args, "--dt", D2]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"dt={D2} unchanged interviews=2")
    assert main([*args, "--dt", "2025-13-01"]) == 2
    assert "not a real date" in capsys.readouterr().err

    # A published copy that cannot be read fails its partition by name; the others are rebuilt.
    key = LAYOUT.interview_key(LAYOUT.interview_base("a", D1, "frontend-developer"))
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"<html>502</html>")
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"dt={D1} FAILED" in out and key in out and f"dt={D2} unchanged" in out


def test_from_conn_id_and_the_cli_use_the_airflow_connection(s3_client, s3_bucket, aws_conn_env):
    from airflow_provider_qode.cli import main

    publish(s3_client, s3_bucket, {"a": body("a")})
    curator = Curator.from_conn_id(aws_conn_env, s3_bucket, PREFIX, encryption="AES256")
    assert curator.rebuild(D1).changed
    head = s3_client.head_object(Bucket=s3_bucket, Key=LAYOUT.curated_key("interviews", D1))
    assert head["ServerSideEncryption"] == "AES256"  # the store's policy applies to Parquet too
    args = ["curate", "--bucket", s3_bucket, "--prefix", PREFIX, "--aws-conn-id", aws_conn_env]
    assert main(args) == 0
    assert main([*args, "--encryption", "rot13"]) == 2
