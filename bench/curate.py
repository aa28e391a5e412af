"""The curate stage of ``make bench``: what rebuilding curated partitions costs (issue #10).

Two measurements, each in a fresh child process with its own moto S3 server (imports, pyarrow
included, are paid before the clock starts and reported apart):

* ``partition``: one date partition of ``n`` published interviews (10,000 in the full plan),
  written by the real :class:`LakeWriter` from generated payloads (no API: only the lake matters
  here), then one :meth:`Curator.rebuild` of it from cold: rows/s over the three tables, and a
  second rebuild that finds nothing to change (the cost of a rerun's check).
* ``chunk``: one landing chunk of ``n`` ids (1,000) through ``ingest_chunk`` against the stand-in,
  exactly as the landing task runs it, then the rebuild of the partitions that chunk reports in
  ``touched_dts``, exactly as the curate task runs it. The share is curate seconds / landing
  seconds (target: < 15%).

:func:`stage` runs both for :mod:`bench.e2e`; ``python -m bench.curate`` runs them alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import (
    AWS_CONN_ID,
    QODE_CONN_ID,
    apply_env,
    connection_env,
    cpu_seconds,
    moto_server,
    rss_mib,
    run_child,
    s3_client,
)

#: The share of a chunk's landing time the curate stage may take.
SHARE_TARGET = 0.15
DAY = date(2025, 11, 20)
PREFIX = "lake"


def _import_everything() -> float:
    started = time.perf_counter()
    from airflow_provider_qode import ingest  # noqa: F401
    from airflow_provider_qode.lake import curated  # noqa: F401
    from airflow_provider_qode.quality import gate

    gate._import_gx()
    return time.perf_counter() - started


def _bucket(endpoint: str) -> str:
    name = "bench-curate"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def partition(n: int, endpoint: str) -> dict[str, Any]:
    """Seed one partition of ``n`` interviews, then rebuild it twice (cold, then unchanged)."""
    from airflow_provider_qode.lake.curated import Curator
    from airflow_provider_qode.lake.writer import LakeWriter
    from airflow_provider_qode.models import parse_interview
    from airflow_provider_qode.sandbox.generator import SandboxDataset
    from bench.common import Dataset

    sizes = Dataset()
    dataset = SandboxDataset(
        seed=sizes.seed,
        count=n,
        questions=sizes.questions,
        agents=sizes.agents,
        criteria=sizes.criteria,
        transcript_lines=sizes.transcript_lines,
        start_date=DAY,
        days=1,
    )
    bucket = _bucket(endpoint)
    client = s3_client(endpoint, pool=32)
    writer = LakeWriter(
        client, bucket, PREFIX, dag_id="bench", run_id="seed", chunk="chunk-0", run_date=DAY
    )

    def publish(interview_id: str) -> str:
        body = dataset.body(interview_id)
        return writer.publish(interview_id, body, parse_interview(body, interview_id)).dt

    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        dts = set(pool.map(publish, dataset.ids))
    seed_seconds = time.perf_counter() - started
    [dt] = dts

    curator = Curator.from_client(client, bucket, PREFIX)
    started, cpu = time.perf_counter(), cpu_seconds()
    result = curator.rebuild(dt)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    started = time.perf_counter()
    again = Curator.from_client(client, bucket, PREFIX).rebuild(dt)
    check_seconds = time.perf_counter() - started
    rows = sum(result.rows.values())
    return {
        "n": n,
        "dt": dt,
        "seed_seconds": round(seed_seconds, 2),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "rows": result.rows,
        "rows_per_second": round(rows / seconds, 1),
        "interviews_per_second": round(result.rows["interviews"] / seconds, 1),
        "unchanged_check_seconds": round(check_seconds, 2),
        "unchanged_check_changed": again.changed,
    }


def chunk(ids: list[str], endpoint: str) -> dict[str, Any]:
    """Land one chunk as the landing task does, then curate what it touched as curate does."""
    from airflow_provider_qode.hooks.qode import QodeHook
    from airflow_provider_qode.ingest import ingest_chunk
    from airflow_provider_qode.lake.curated import Curator
    from airflow_provider_qode.lake.writer import LakeWriter

    bucket = _bucket(endpoint)
    writer = LakeWriter.from_conn_id(
        AWS_CONN_ID, bucket, PREFIX, dag_id="bench", run_id="run", chunk="chunk-0", run_date=DAY
    )
    started = time.perf_counter()
    with QodeHook(QODE_CONN_ID) as hook:
        summary = ingest_chunk(hook, writer, ids)
    land_seconds = time.perf_counter() - started
    started = time.perf_counter()
    curated = Curator.from_conn_id(AWS_CONN_ID, bucket, PREFIX).rebuild_many(summary.touched_dts)
    curate_seconds = time.perf_counter() - started
    return {
        "n": len(ids),
        "published": summary.published,
        "touched_dts": sorted(summary.touched_dts),
        "land_seconds": round(land_seconds, 2),
        "curate_seconds": round(curate_seconds, 2),
        "curated_rows": curated.rows,
        "share_of_landing": round(curate_seconds / land_seconds, 3),
    }


def stage(
    base_url: str, ids_file: Path, *, partition_n: int, chunk_n: int, log: Any = print
) -> dict[str, Any]:
    """Both measurements, each child with a moto server of its own; for :mod:`bench.e2e`."""
    results: dict[str, Any] = {}
    for name, args in (
        ("partition", ["partition", "-n", str(partition_n)]),
        ("chunk", ["chunk", "-n", str(chunk_n), "--ids-file", str(ids_file)]),
    ):
        log(f"  curate_{name} ...")
        with moto_server() as endpoint:
            env = connection_env(base_url, endpoint)
            results[name] = run_child("bench.curate", args, env, timeout=3600)
    part, land = results["partition"], results["chunk"]
    log(
        f"    rebuild of {part['n']} interviews: {part['seconds']} s, "
        f"{part['rows_per_second']} rows/s; chunk of {land['n']}: curate {land['curate_seconds']}"
        f" s / land {land['land_seconds']} s = {land['share_of_landing']}"
    )
    results["rows_per_second"] = part["rows_per_second"]
    results["share_of_landing"] = land["share_of_landing"]
    return results


def check(results: dict[str, Any] | None) -> str:
    """The target line for ``make bench``."""
    share = (results or {}).get("share_of_landing")
    if not isinstance(share, float | int):
        return "not measured"
    ok = share < SHARE_TARGET
    return f"{'PASS' if ok else 'FAIL'} ({share} < {SHARE_TARGET})"


def _child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["partition", "chunk"])
    parser.add_argument("-n", type=int, required=True)
    parser.add_argument("--ids-file", type=Path)
    args = parser.parse_args(argv)
    apply_env()
    endpoint = os.environ["BENCH_S3_ENDPOINT"]
    import_seconds = _import_everything()
    started, rss = time.perf_counter(), rss_mib()
    if args.kind == "partition":
        result = partition(args.n, endpoint)
    else:
        assert args.ids_file is not None
        ids = json.loads(args.ids_file.read_text())[: args.n]
        result = chunk(ids, endpoint)
    result.update(
        wall_seconds=round(time.perf_counter() - started, 2),
        import_seconds=round(import_seconds, 2),
        peak_rss_mib=round(max(rss, rss_mib()), 1),
    )
    print(json.dumps(result), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.curate", description=__doc__)
    parser.add_argument("--partition-n", type=int, default=10_000)
    parser.add_argument("--chunk-n", type=int, default=1_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args(argv)
    import tempfile
    from dataclasses import replace

    from bench.common import Dataset, sandbox

    apply_env()
    dataset = replace(Dataset(), count=args.chunk_n, latency_ms=args.latency_ms)
    with tempfile.TemporaryDirectory() as tmp, sandbox(dataset) as base_url:
        ids_file = Path(tmp) / "ids.json"
        ids_file.write_text(json.dumps(dataset.ids()))
        results = stage(base_url, ids_file, partition_n=args.partition_n, chunk_n=args.chunk_n)
    print(json.dumps(results, indent=1))
    print(f"curate < {SHARE_TARGET:.0%} of a chunk's landing: {check(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
