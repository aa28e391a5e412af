"""Cold mapped task: what Airflow runs, a fresh interpreter per chunk, imports on the clock.

Every mapped landing task is a new process: it imports ``airflow.sdk`` (the task runner does),
then the operator's module, builds the operator and calls ``execute``. The warm contestants
(:mod:`bench.contestants`) pay their imports before their clock starts; here the clock starts
when the process does and stops when ``execute`` returns, so imports count.

* ``provider``: ``QodeInterviewsToS3Operator(...).execute(context)`` on one chunk, with the
  minimal context a task process gives it (logical date, task instance with ``map_index``);
  connections from ``AIRFLOW_CONN_*`` as in the other contestants.
* ``ceiling``: its own cold process that imports ``airflow.sdk`` as every task process does,
  then the same GETs and PUTs as the warm ceiling (:func:`bench.contestants._ceiling`).

**Clock.** Process start is read from ``/proc/self/stat`` (field 22, ``starttime``, in clock
ticks since boot, 10 ms resolution) and compared with ``CLOCK_BOOTTIME``, the clock the kernel
stamps it with. ``seconds`` runs from there to the task's return; ``import_seconds`` from there
to the end of the imports. The parent's wall time around the subprocess (which adds interpreter
start-up before the fork is visible and teardown after the return) is reported as
``parent_seconds``. The ceiling imports the benchmark harness (``bench.contestants``) to reuse
``_ceiling``; what that import adds beyond ``airflow.sdk``, httpx and boto3 is timed in the
child and taken off its clock (``harness_import_seconds``), so the harness never flatters the
provider.

``python -m bench.cold --child provider|ceiling ...`` is one contestant; :func:`run_cold` runs
them against a running stand-in, each with a fresh moto S3 server. Each prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: The chunk sizes measured: the example DAG's default, and a chunk four times that.
SIZES = (500, 2_000)
#: Cold provider / cold ceiling at the smallest size (issue #11, target 1).
TARGET = 0.75
RUN_DATE = "2024-06-10"


def process_seconds() -> float:
    """Seconds since this process started, from the kernel's own start stamp."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    start_ticks = int(fields[19])  # field 22 overall; fields[0] here is field 3 (state)
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the children ------------------------------------------------------------------------------


class _TaskInstance:
    """The attributes of ``ti`` that ``execute`` reads: a mapped task's index."""

    def __init__(self, map_index: int) -> None:
        self.map_index = map_index


def provider(args: argparse.Namespace, ids: list[str]) -> tuple[float, dict[str, Any]]:
    """Import what a task process imports, build the operator, run ``execute``."""
    from datetime import UTC, datetime

    import airflow.sdk  # noqa: F401  (the task runner has it before the DAG file is read)

    from airflow_provider_qode.operators.interviews import QodeInterviewsToS3Operator

    import_seconds = process_seconds()
    operator = QodeInterviewsToS3Operator(
        task_id="land_chunk",
        interview_ids=ids,
        s3_bucket=args.bucket,
        s3_prefix="lake",
        qode_conn_id=args.qode_conn_id,
        aws_conn_id=args.aws_conn_id,
    )
    context: Any = {
        "ti": _TaskInstance(map_index=0),
        "logical_date": datetime.fromisoformat(RUN_DATE).replace(tzinfo=UTC),
    }
    summary = operator.execute(context)
    detail: dict[str, Any] = {
        key: summary[key]
        for key in ("published", "quarantined", "missing", "failed", "unchanged")
        if key in summary
    }
    detail["stage_seconds"] = summary.get("seconds", {})
    return import_seconds, detail


def ceiling(args: argparse.Namespace, ids: list[str]) -> tuple[float, dict[str, Any]]:
    """``airflow.sdk`` as every task process, then the warm ceiling's GETs and PUTs."""
    import asyncio

    import airflow.sdk  # noqa: F401
    import boto3  # noqa: F401  (what _ceiling uses; imported here so the harness time is apart)
    import httpx  # noqa: F401
    from botocore.config import Config  # noqa: F401

    before_harness = time.perf_counter()
    from bench.contestants import _ceiling

    harness = time.perf_counter() - before_harness
    import_seconds = process_seconds() - harness
    written = asyncio.run(_ceiling(ids, args.bucket, args.concurrency, args.s3_concurrency))
    detail = {
        "objects": written,
        "max_concurrency": args.concurrency,
        "s3_concurrency": args.s3_concurrency,
        "harness_import_seconds": round(harness, 3),
    }
    return import_seconds, detail


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold")
    parser.add_argument("--child", choices=["provider", "ceiling"], required=True)
    parser.add_argument("--ids-file", required=True)
    parser.add_argument("-n", type=int, required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--qode-conn-id", default="qode_bench")
    parser.add_argument("--aws-conn-id", default="aws_bench")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--s3-concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    ids = json.loads(Path(args.ids_file).read_text())[: args.n]
    run = provider if args.child == "provider" else ceiling
    import_seconds, detail = run(args, ids)
    seconds = process_seconds() - detail.get("harness_import_seconds", 0.0)
    n = len(ids)
    result = {
        "contestant": f"cold_{args.child}",
        "n": n,
        "seconds": round(seconds, 2),
        "interviews_per_second": round(n / seconds, 1),
        "ms_per_interview": round(1000 * seconds / n, 3),
        "import_seconds": round(import_seconds, 2),
        "work_seconds": round(seconds - import_seconds, 2),
        "import_share": round(import_seconds / seconds, 3),
        "cpu_seconds": round(_cpu_seconds(), 2),
        "cpu_seconds_per_1000": round(1000 * _cpu_seconds() / n, 2),
        "peak_rss_mib": round(_rss_mib(), 1),
        "clock": "process start (/proc/self/stat starttime) to execute's return",
        **detail,
    }
    print(json.dumps(result), flush=True)
    return 0


# --- the parent --------------------------------------------------------------------------------


def _cold_child(
    kind: str, ids_file: Path, n: int, base_url: str, s3_endpoint: str | None, extra: list[str]
) -> dict[str, Any]:
    """One contestant in a fresh interpreter with a new bucket (and moto server, if none given)."""
    import uuid
    from contextlib import nullcontext

    from bench.common import (
        AWS_CONN_ID,
        QODE_CONN_ID,
        connection_env,
        moto_server,
        run_child,
        s3_client,
    )

    with nullcontext(s3_endpoint) if s3_endpoint else moto_server() as endpoint:
        bucket = f"cold-{kind}-{uuid.uuid4().hex[:8]}"
        s3_client(endpoint).create_bucket(Bucket=bucket)
        args = [
            kind,
            "--ids-file",
            str(ids_file),
            "-n",
            str(n),
            "--bucket",
            bucket,
            "--qode-conn-id",
            QODE_CONN_ID,
            "--aws-conn-id",
            AWS_CONN_ID,
            *extra,
        ]
        started = time.perf_counter()
        result = run_child("bench.cold", args, connection_env(base_url, endpoint))
        result["parent_seconds"] = round(time.perf_counter() - started, 2)
    return result


def run_cold(
    base_url: str,
    s3_endpoint: str | None,
    ids_file: Path,
    sizes: Sequence[int] = SIZES,
    *,
    repeat: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Cold ceiling then cold provider at each size; ``runs`` plus ``ratios`` (provider/ceiling).

    ``base_url`` is a running stand-in's ``.../api/v1`` with at least ``max(sizes)`` ids in
    ``ids_file``. Every child gets a new bucket on ``s3_endpoint``, or with None its own fresh
    moto S3 server (as the warm contestants do). The ceiling uses the provider's default API
    concurrency and S3 threads, as the warm one does. With ``repeat`` > 1 each size runs that
    many ceiling-then-provider pairs back to back (on a shared box the load drifts between
    pairs, not within one); the ratio is the median pair's, and ``runs`` keeps that pair.
    """
    from bench.e2e import _defaults

    concurrency, s3_concurrency = _defaults()
    extra = ["--concurrency", str(concurrency), "--s3-concurrency", str(s3_concurrency)]
    runs: dict[str, Any] = {}
    ratios: dict[str, float | None] = {}
    spread: dict[str, list[float]] = {}
    for n in sizes:
        pairs: list[tuple[float, dict[str, Any]]] = []
        for _ in range(max(1, repeat)):
            pair: dict[str, Any] = {}
            for kind in ("ceiling", "provider"):
                log(f"  cold_{kind}_{n} ...")
                result = _cold_child(kind, Path(ids_file), n, base_url, s3_endpoint, extra)
                pair[kind] = result
                log(
                    f"    {result['seconds']} s ({result['import_seconds']} s importing), "
                    f"{result['interviews_per_second']}/s, peak RSS {result['peak_rss_mib']} MiB"
                )
            rate = (
                pair["provider"]["interviews_per_second"] / pair["ceiling"]["interviews_per_second"]
            )
            pairs.append((round(rate, 3), pair))
        ratio, chosen = _median_pair(pairs)
        ratios[str(n)] = ratio
        spread[str(n)] = [r for r, _ in pairs]
        for kind, result in chosen.items():
            runs[f"cold_{kind}_{n}"] = result
    return {
        "runs": runs,
        "ratios": ratios,
        "ratio_runs": spread,
        "target": TARGET,
        "sizes": list(sizes),
    }


def _median_pair(
    pairs: list[tuple[float, dict[str, Any]]],
) -> tuple[float, dict[str, Any]]:
    """The pair with the median ratio (the lower middle one for an even count)."""
    ordered = sorted(pairs, key=lambda p: p[0])
    return ordered[(len(ordered) - 1) // 2]


def cli(argv: Sequence[str] | None = None) -> int:
    """Stand-alone: start the stand-in, run :func:`run_cold`, print the JSON."""
    import tempfile
    from dataclasses import replace

    from bench.common import Dataset, apply_env, sandbox

    parser = argparse.ArgumentParser(prog="python -m bench.cold")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=1, help="pairs per size; median ratio")
    args = parser.parse_args(argv)
    apply_env()
    dataset = replace(Dataset(), count=max(args.sizes), latency_ms=args.latency_ms)
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp) / "ids.json"
        ids_file.write_text(json.dumps(dataset.ids()))
        with sandbox(dataset) as base_url:
            done = run_cold(
                base_url,
                None,
                ids_file,
                args.sizes,
                repeat=args.repeat,
                log=lambda m: print(m, flush=True),
            )
    print(json.dumps(done))
    return 0


if __name__ == "__main__":
    argv = sys.argv[1:]
    sys.exit(main(argv) if argv[:1] == ["--child"] else cli(argv))
