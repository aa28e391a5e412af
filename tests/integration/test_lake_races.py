"""Landings in separate processes at the same time, as under a real scheduler.

Each landing is the real chunk code (``ingest_chunk``: stand-in API over HTTP, gate, writer) in
its own spawned process, against moto's S3 server deciding conditional writes atomically. The
only thing the tests add is a rendezvous around the fetch, so that the landings overlap.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.sandbox.generator import SandboxDataset
from tests.fixtures.sandbox import SANDBOX_TOKEN

pytestmark = pytest.mark.slow

PREFIX = "lake"
TRIALS = 3
DATASET = SandboxDataset(seed=21, count=32, broken_share=0.0, alias_share=0.0)
EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "valid_ci_v2.json"
WAIT = 60  # seconds a landing waits at a rendezvous before giving up (a failure, not a pass)


# --- what runs in the worker processes -------------------------------------------------------


def _warm(barrier: Any) -> int:
    """Import the landing code and run the gate once per worker (its first run builds the GX
    context); the barrier puts one warm-up on each worker."""
    from airflow_provider_qode.models import parse_interview
    from airflow_provider_qode.quality.gate import FetchedInterview, validate_batch

    raw = EXAMPLE.read_bytes()
    validate_batch([FetchedInterview("warm-up", raw, interview=parse_interview(raw))])
    barrier.wait(WAIT * 4)
    return os.getpid()


def _land(
    endpoint: str,
    bucket: str,
    api: str,
    ids: list[str],
    dag_id: str,
    run_id: str,
    chunk: str,
    fetched: Any = None,
    rendezvous: Any = None,
    release: Any = None,
) -> dict[str, Any]:
    """One landing task: ``ingest_chunk`` on its own ids. Once the chunk is fetched, ``fetched``
    is set; before landing starts, ``rendezvous`` (a barrier or event) is awaited and
    ``release`` set."""
    os.environ["AIRFLOW_CONN_QODE_DEFAULT"] = json.dumps(
        {
            "conn_type": "qode",
            "host": api,
            "password": SANDBOX_TOKEN,
            "extra": {
                "timeout": 10,
                "max_retries": 2,
                "backoff_base": 0.01,
                "allowed_asset_hosts": ["127.0.0.1"],
            },
        }
    )
    from airflow_provider_qode import ingest
    from airflow_provider_qode.hooks.qode import QodeHook
    from airflow_provider_qode.lake.writer import LakeWriter
    from airflow_provider_qode.quality import gate  # ingest imports the gate when a chunk runs

    validate = gate.validate_batch

    def meet_then_validate(batch, **kwargs):
        # A chunk smaller than a sub-batch is checked once, after its whole fetch.
        if fetched is not None:
            fetched.set()
        if release is not None:
            release.set()
        if rendezvous is not None and rendezvous.wait(WAIT) is False:
            raise TimeoutError("the other landing never came")
        return validate(batch, **kwargs)

    gate.validate_batch = meet_then_validate
    try:  # the worker process lands again in later tests: put the real functions back after
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        writer = LakeWriter(
            client, bucket, PREFIX, dag_id=dag_id, run_id=run_id, chunk=chunk, run_date="2025-11-30"
        )
        with QodeHook("qode_default") as hook:
            summary = ingest.ingest_chunk(hook, writer, ids)
    finally:
        gate.validate_batch = validate
    return summary.to_xcom(bucket)


def _wait_for(event: Any) -> None:
    if not event.wait(WAIT):
        raise TimeoutError("a landing never reached its fetch")


# --- fixtures and checks ---------------------------------------------------------------------


class Workers:
    """Three warm worker processes, and the events and barriers they share, kept referenced
    until the module is done so that none is freed while a worker still holds it."""

    def __init__(self, pool: ProcessPoolExecutor, manager: Any) -> None:
        self.pool, self._manager, self._kept = pool, manager, []

    def event(self) -> Any:
        self._kept.append(self._manager.Event())
        return self._kept[-1]

    def barrier(self, parties: int) -> Any:
        self._kept.append(self._manager.Barrier(parties))
        return self._kept[-1]


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(3, mp_context=context) as pool:
        shared = Workers(pool, manager)
        barrier = shared.barrier(3)
        assert len({f.result() for f in [pool.submit(_warm, barrier) for _ in range(3)]}) == 3
        yield shared


@pytest.fixture
def served(tmp_path: Path, sandbox_factory) -> tuple[Path, str]:
    DATASET.dump(tmp_path)
    return tmp_path, sandbox_factory(tmp_path).base_url


def new_bucket(endpoint: str) -> str:
    name = f"race-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def lake(endpoint: str, bucket: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def check_one_copy_each(objects: dict[str, bytes], ids: list[str]) -> dict[str, dict]:
    """Every id: one published JSON, the index on it, its assets exactly those the index lists."""
    layout = LakeLayout(PREFIX)
    indexes = {}
    for interview_id in ids:
        index = json.loads(objects[layout.index_key(interview_id)])
        mine = f"/{interview_id}/interview.json"
        jsons = [k for k in objects if k.startswith(f"{PREFIX}/interviews/") and k.endswith(mine)]
        assert jsons == [index["key"]], (interview_id, jsons, index["key"])
        assert index["state"] == "published" and index["pending"] == [] and not index["claim"]
        stored = {k for k in objects if k.startswith(index["base"]) and "/assets/" in k}
        assert stored == {a["key"] for a in index["assets"]}, interview_id
        indexes[interview_id] = index
    assert not [k for k in objects if "/_journal/" in k or "/quarantine/" in k]
    return indexes


# --- the races -------------------------------------------------------------------------------


def test_parallel_chunks_of_one_run_all_land_on_their_first_attempt(
    workers, served, atomic_s3_endpoint
):
    pool = workers.pool
    _, api = served
    ids = list(DATASET.ids[:30])
    chunks = [ids[i::3] for i in range(3)]
    for trial in range(TRIALS):
        bucket = new_bucket(atomic_s3_endpoint)
        barrier = workers.barrier(3)  # all three fetched: they begin and land together
        futures = [
            pool.submit(
                _land,
                atomic_s3_endpoint,
                bucket,
                api,
                chunk,
                "qode_interview_ingestion",
                f"scheduled-{trial}",
                f"chunk-{n}",
                None,
                barrier,
            )
            for n, chunk in enumerate(chunks)
        ]
        summaries = [f.result(timeout=120) for f in futures]  # an exception fails the trial
        assert [s["published"] for s in summaries] == [10, 10, 10], summaries
        assert all(s["failed"] == 0 and s["quarantined"] == 0 for s in summaries)
        check_one_copy_each(lake(atomic_s3_endpoint, bucket), ids)


def _second_version(folder: Path, interview_id: str, move: bool) -> tuple[bytes, bytes]:
    """Rewrite the served interview: a new screenshot (new file, new bytes), and for ``move``
    another role and day. Returns the new JSON bytes and the new asset bytes."""
    doc = json.loads((folder / f"{interview_id}.json").read_bytes())
    asset = f"v2-{interview_id}".encode() * 3
    (folder / "assets" / "identity" / f"{interview_id}-v2.png").write_bytes(asset)
    doc["identity_screenshot_path"] = f"assets/identity/{interview_id}-v2.png"
    if move:
        doc["mapped_role_title"] = "Site Reliability Engineer"
        doc["timestamp"] = "2025-11-29T12:00:00Z"
    raw = json.dumps(doc, indent=2).encode()
    (folder / f"{interview_id}.json").write_bytes(raw)
    return raw, asset


def test_two_landings_of_the_same_ids_keep_one_copy_from_the_later_fetch(
    workers, served, atomic_s3_endpoint
):
    pool = workers.pool
    folder, api = served
    ids = list(DATASET.ids[:32])
    originals = {i: (folder / f"{i}.json").read_bytes() for i in ids}
    for trial in range(TRIALS):
        for interview_id, raw in originals.items():  # every trial starts from version 1
            (folder / f"{interview_id}.json").write_bytes(raw)
        bucket = new_bucket(atomic_s3_endpoint)
        fetched, go = workers.event(), workers.event()
        # The daily DAG fetches version 1 and waits; the payloads change; the report-sensor DAG
        # fetches version 2; then both land at once.
        daily = pool.submit(
            _land,
            atomic_s3_endpoint,
            bucket,
            api,
            ids,
            "qode_interview_ingestion",
            f"scheduled-{trial}",
            "chunk-0",
            fetched,
            go,
        )
        _wait_for(fetched)
        second = {i: _second_version(folder, i, move=n % 2 == 0) for n, i in enumerate(ids)}
        sensor = pool.submit(
            _land,
            atomic_s3_endpoint,
            bucket,
            api,
            ids,
            "qode_report_sensor",
            f"manual-{trial}",
            "chunk-0",
            None,
            None,
            go,
        )
        summaries = [f.result(timeout=120) for f in (daily, sensor)]
        assert all(s["published"] == 32 and s["failed"] == 0 for s in summaries), summaries

        objects = lake(atomic_s3_endpoint, bucket)
        indexes = check_one_copy_each(objects, ids)
        for interview_id, (raw, asset) in second.items():  # the later fetch won, whole
            index = indexes[interview_id]
            assert objects[index["key"]] == raw, interview_id
            assert [objects[a["key"]] for a in index["assets"]] == [asset], interview_id
