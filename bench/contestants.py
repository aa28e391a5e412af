"""The contestants, each run in a fresh child process by :mod:`bench.e2e`.

* ``provider``: :func:`airflow_provider_qode.ingest.ingest_chunk`, exactly what the landing
  operator runs, on chunks of ``--chunk`` ids processed one after another in this process.
* ``diy``: what one would write with stock hooks: per interview, sequentially, ``HttpHook`` GET,
  one GX run of that interview, ``S3Hook.load_string`` / ``load_bytes``.
* ``ceiling``: the same GETs and PUTs of the same bytes at the same concurrency, nothing else.
  With ``--index-doc`` it also makes the provider's third PUT per new interview, a small JSON
  document created with ``If-None-Match`` (the provider's index entry): the ceiling of the
  provider's own requests, reported beside the plain one.
* ``blob``: one big asset streamed through ``QodeHook.open_asset`` + ``put_asset_stream``.

Each prints one JSON line: wall seconds, CPU seconds, peak RSS and what it did.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import (
    AWS_CONN_ID,
    HTTP_CONN_ID,
    QODE_CONN_ID,
    TOKEN,
    apply_env,
    cpu_seconds,
    current_rss_mib,
    rss_mib,
    s3_client,
)

RUN_DATE = "2024-06-10"


def _import_everything(kind: str) -> float:
    """Pay the imports up front (GX is ~8-10 s once per process) and report them apart."""
    started = time.perf_counter()
    if kind == "ceiling":
        import boto3  # noqa: F401
        import httpx  # noqa: F401

        return time.perf_counter() - started
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401
    from airflow.providers.http.hooks.http import HttpHook  # noqa: F401

    from airflow_provider_qode import ingest  # noqa: F401

    if kind != "blob":
        from airflow_provider_qode.quality import gate

        gate._import_gx()
    return time.perf_counter() - started


def _make_bucket(name: str) -> None:
    s3_client(os.environ["BENCH_S3_ENDPOINT"]).create_bucket(Bucket=name)


def _profiled(profile: str | None, fn: Any) -> Any:
    if not profile:
        return fn()
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005, async_mode="disabled")
    profiler.start()
    try:
        return fn()
    finally:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=True, color=False, show_all=False))


# --- provider ----------------------------------------------------------------------------------


def provider(ids: list[str], bucket: str, chunk: int, s3_concurrency: int | None) -> dict[str, Any]:
    from airflow_provider_qode.hooks.qode import QodeHook
    from airflow_provider_qode.ingest import ingest_chunk
    from airflow_provider_qode.lake.writer import LakeWriter

    kwargs = {} if s3_concurrency is None else {"s3_concurrency": s3_concurrency}
    totals: dict[str, Any] = {"published": 0, "quarantined": 0, "missing": 0, "failed": 0}
    seconds: dict[str, float] = {}
    checkpoints: list[dict[str, Any]] = []
    started = time.perf_counter()
    with QodeHook(QODE_CONN_ID) as hook:
        for number, start in enumerate(range(0, len(ids), chunk)):
            writer = LakeWriter.from_conn_id(
                AWS_CONN_ID,
                bucket,
                "lake",
                dag_id="bench",
                run_id="bench-run",
                chunk=f"chunk-{number}",
                run_date=RUN_DATE,
            )
            summary = ingest_chunk(hook, writer, ids[start : start + chunk], **kwargs)
            totals["published"] += summary.published
            totals["quarantined"] += summary.quarantined
            totals["missing"] += len(summary.missing)
            totals["failed"] += len(summary.failed)
            for k, v in summary.seconds.items():
                seconds[k] = seconds.get(k, 0.0) + v
            done = min(start + chunk, len(ids))
            elapsed = time.perf_counter() - started
            checkpoints.append(
                {
                    "n": done,
                    "seconds": round(elapsed, 2),
                    "ms_per_interview": round(1000 * elapsed / done, 3),
                    "peak_rss_mib": round(rss_mib(), 1),
                }
            )
        totals["max_concurrency"] = hook.config.max_concurrency
    totals["chunks"] = -(-len(ids) // chunk)
    totals["chunk_size"] = chunk
    totals["checkpoints"] = checkpoints
    totals["stage_seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    return totals


# --- DIY -------------------------------------------------------------------------------------


def diy(ids: list[str], bucket: str) -> dict[str, Any]:
    from urllib.parse import quote

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.http.hooks.http import HttpHook

    from airflow_provider_qode.lake.layout import LakeLayout, asset_file_name
    from airflow_provider_qode.models import parse_interview
    from airflow_provider_qode.quality.gate import FetchedInterview, validate_batch

    http = HttpHook(method="GET", http_conn_id=HTTP_CONN_ID)
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID)
    layout = LakeLayout("lake")
    counts = {"published": 0, "quarantined": 0, "gx_seconds": 0.0}
    for interview_id in ids:
        response = http.run(f"/api/v1/integrations/candidates/interviews/{quote(interview_id)}")
        raw = response.content
        started = time.perf_counter()
        verdict = validate_batch([FetchedInterview(interview_id, raw)]).interviews[0]
        counts["gx_seconds"] += time.perf_counter() - started
        if not verdict.published:
            base = layout.quarantine_base(RUN_DATE, interview_id)
            s3.load_bytes(raw, layout.interview_key(base), bucket_name=bucket, replace=True)
            reasons = json.dumps({"failed_rules": list(verdict.failed_rules)})
            s3.load_string(reasons, layout.reasons_key(base), bucket_name=bucket, replace=True)
            counts["quarantined"] += 1
            continue
        model = parse_interview(raw, interview_id)
        base = layout.interview_base_for(interview_id, model)
        for name, reference in model.asset_paths.items():
            asset = http.run(f"/api/v1/{reference.lstrip('/')}").content
            key = layout.asset_key(base, asset_file_name(name, reference))
            s3.load_bytes(asset, key, bucket_name=bucket, replace=True)
        s3.load_string(raw.decode(), layout.interview_key(base), bucket_name=bucket, replace=True)
        counts["published"] += 1
    counts["gx_seconds"] = round(counts["gx_seconds"], 2)
    return counts


# --- transport ceiling -------------------------------------------------------------------------


#: About the size of the provider's index document for one interview.
INDEX_DOC = json.dumps(
    {"interview_id": "x" * 73, "published": {"key": "k" * 120}, "pad": "p" * 200}
)


async def _ceiling(
    ids: list[str], bucket: str, concurrency: int, s3_concurrency: int, index_doc: bool = False
) -> int:
    import httpx

    base_url = os.environ["BENCH_BASE_URL"]
    client_s3 = s3_client(os.environ["BENCH_S3_ENDPOINT"], pool=max(10, s3_concurrency))
    pool = ThreadPoolExecutor(max_workers=s3_concurrency)
    loop = asyncio.get_running_loop()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    slots = asyncio.Semaphore(concurrency)
    written = 0

    def put(key: str, body: bytes, **conditions: str) -> None:
        client_s3.put_object(Bucket=bucket, Key=key, Body=body, **conditions)  # type: ignore[arg-type]

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:

        async def get(path: str) -> bytes:
            async with slots:
                response = await client.get(path, headers=headers)
                response.raise_for_status()
                return response.content

        async def one(interview_id: str) -> None:
            nonlocal written
            raw = await get(f"/integrations/candidates/interviews/{interview_id}")
            asset = await get(f"/assets/identity/{interview_id}.png")
            puts = [
                loop.run_in_executor(pool, put, f"ceiling/{interview_id}/interview.json", raw),
                loop.run_in_executor(pool, put, f"ceiling/{interview_id}/asset.png", asset),
            ]
            if index_doc:
                create = functools.partial(put, IfNoneMatch="*")
                key = f"ceiling/_index/{interview_id}.json"
                puts.append(loop.run_in_executor(pool, create, key, INDEX_DOC.encode()))
            await asyncio.gather(*puts)
            written += len(puts)

        await asyncio.gather(*(one(i) for i in ids))
    pool.shutdown()
    return written


def ceiling(
    ids: list[str], bucket: str, concurrency: int, s3_concurrency: int, index_doc: bool
) -> dict[str, Any]:
    written = asyncio.run(_ceiling(ids, bucket, concurrency, s3_concurrency, index_doc))
    return {
        "objects": written,
        "max_concurrency": concurrency,
        "s3_concurrency": s3_concurrency,
        "index_doc": index_doc,
    }


# --- one big asset -----------------------------------------------------------------------------


def blob(size: int, bucket: str) -> dict[str, Any]:
    import gc

    from airflow_provider_qode.hooks.qode import QodeHook
    from airflow_provider_qode.lake.writer import LakeWriter

    writer = LakeWriter.from_conn_id(
        AWS_CONN_ID, bucket, "lake", dag_id="bench", run_id="blob", chunk=0, run_date=RUN_DATE
    )
    gc.collect()
    before = current_rss_mib()
    peak_before = rss_mib()
    with QodeHook(QODE_CONN_ID) as hook, hook.open_asset(f"assets/blob/{size}.bin") as stream:
        written = writer.put_asset_stream(
            "lake/blob/", "blob.bin", stream, content_type=stream.content_type
        )
    return {
        "bytes": written.size,
        "rss_before_mib": round(before, 1),
        "peak_rss_before_mib": round(peak_before, 1),
        "rss_growth_mib": round(rss_mib() - max(before, 0.0), 1),
    }


# --- entry -------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.contestants")
    parser.add_argument("--child", choices=["provider", "diy", "ceiling", "blob"], required=True)
    parser.add_argument("--ids-file")
    parser.add_argument("-n", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=0, help="0: all ids as one chunk")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--s3-concurrency", type=int, default=None)
    parser.add_argument("--blob-bytes", type=int, default=2**30)
    parser.add_argument("--profile", help="write a pyinstrument text profile here")
    parser.add_argument("--index-doc", action="store_true", help="ceiling: also PUT an index doc")
    args = parser.parse_args(argv)
    apply_env()

    import_seconds = _import_everything(args.child)
    cpu_after_import = cpu_seconds()
    rss_after_import = rss_mib()
    bucket = f"bench-{args.child}-{uuid.uuid4().hex[:8]}"
    _make_bucket(bucket)
    ids: list[str] = []
    if args.ids_file:
        ids = json.loads(Path(args.ids_file).read_text())[: args.n]

    started = time.perf_counter()
    cpu_started = cpu_seconds()
    if args.child == "provider":
        chunk = args.chunk or len(ids)
        detail = _profiled(args.profile, lambda: provider(ids, bucket, chunk, args.s3_concurrency))
    elif args.child == "diy":
        detail = _profiled(args.profile, lambda: diy(ids, bucket))
    elif args.child == "ceiling":
        s3c = args.s3_concurrency or 8
        detail = _profiled(
            args.profile, lambda: ceiling(ids, bucket, args.concurrency, s3c, args.index_doc)
        )
    else:
        detail = blob(args.blob_bytes, bucket)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    n = len(ids)
    result = {
        "contestant": args.child,
        "n": n,
        "seconds": round(seconds, 2),
        "interviews_per_second": round(n / seconds, 1) if n else None,
        "ms_per_interview": round(1000 * seconds / n, 3) if n else None,
        "cpu_seconds": round(cpu, 2),
        "cpu_seconds_per_1000": round(1000 * cpu / n, 2) if n else None,
        "import_seconds": round(import_seconds, 2),
        "import_cpu_seconds": round(cpu_after_import, 2),
        "rss_after_import_mib": round(rss_after_import, 1),
        "peak_rss_mib": round(rss_mib(), 1),
        **detail,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
