"""The real DAG (#11 target 5): a day of interviews through ``qode_interview_ingestion``.

What the contestants of :mod:`bench.e2e` leave out is what a deployment pays around the landing
work: the scheduler queueing each mapped task, LocalExecutor starting a task process, that
process importing Airflow, the provider and GX, reading connections and pushing XCom, and the
tasks before and after the chunks. Here the real stack (api-server, scheduler, dag-processor,
triggerer: :class:`~airflow_provider_qode.sandbox.airflow_stack.AirflowStack`, as the end-to-end
test and ``make demo-ui`` run it) runs the example DAG on the stand-in and moto's S3 server,
once per chunk size, each run into a fresh bucket. Figures are reported, never asserted.

From the REST API (run and task-instance start/end times, and each chunk's XCom, whose
``seconds.total`` is the time spent in ``ingest_chunk``):

* ``wall_seconds``: the run's ``queued_at`` to ``end_date``;
* ``share_no_landing_task``: the share of that wall time when no landing task was running at
  all (scheduling, queueing, the ids task, ``summarize``);
* ``share_outside_landing``: the share when no landing task was inside ``ingest_chunk``: the
  above plus task start-up (process, imports, connections) not hidden behind another chunk's
  landing work;
* ``startup_share_of_task_time``: summed over landing tasks, (task time - ingest time) / task
  time: what each task process pays besides its chunk.

``python -m bench.dag [--count N] [--chunk-sizes 250 500 2000] [--latency-ms 100]`` starts its
own stand-in; :func:`run_dag_bench` is what ``make bench`` calls with its own.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, TOKEN, Dataset, apply_env, moto_server, s3_client, sandbox

DAG_ID = "qode_interview_ingestion"
LANDING_TASK = "land_chunk"
PREFIX = "bench"
#: LocalExecutor task slots: as the end-to-end test stack, two per core on the 2-core box.
PARALLELISM = 4


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def covered_seconds(spans: Iterable[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals (overlaps counted once)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def max_overlap(spans: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def analyse_run(
    run: dict[str, Any],
    task_instances: Sequence[dict[str, Any]],
    ingest_seconds: dict[int, float],
    interviews: int,
) -> dict[str, Any]:
    """Where one run's wall time went, from the REST API's run, task instances and chunk XComs.

    ``ingest_seconds`` maps a landing task's ``map_index`` to its XCom's ``seconds.total``; a
    chunk's landing work is taken as the last that many seconds of its task.
    """
    origin = _when(run["queued_at"])

    def at(value: str) -> float:
        return (_when(value) - origin).total_seconds()

    wall = at(run["end_date"])
    landing = [t for t in task_instances if t["task_id"] == LANDING_TASK]
    spans = [(at(t["start_date"]), at(t["end_date"])) for t in landing]
    work = [
        (max(start, end - ingest_seconds.get(t["map_index"], 0.0)), end)
        for t, (start, end) in zip(landing, spans, strict=True)
    ]
    task_time = sum(end - start for start, end in spans)
    work_time = sum(end - start for start, end in work)
    queued = [at(t["start_date"]) - at(t["queued_when"]) for t in landing if t.get("queued_when")]
    others = {
        t["task_id"]: round(at(t["end_date"]) - at(t["start_date"]), 2)
        for t in task_instances
        if t["task_id"] != LANDING_TASK and t.get("start_date") and t.get("end_date")
    }
    count = max(len(landing), 1)
    return {
        "state": run["state"],
        "interviews": interviews,
        "chunks": len(landing),
        "wall_seconds": round(wall, 1),
        "interviews_per_second": round(interviews / wall, 1) if wall > 0 else None,
        "share_no_landing_task": round(1 - covered_seconds(spans) / wall, 3),
        "share_outside_landing": round(1 - covered_seconds(work) / wall, 3),
        "startup_share_of_task_time": round(1 - work_time / task_time, 3) if task_time else None,
        "mean_task_seconds": round(task_time / count, 2),
        "mean_ingest_seconds": round(work_time / count, 2),
        "mean_startup_seconds": round((task_time - work_time) / count, 2),
        "mean_queued_seconds": round(sum(queued) / len(queued), 2) if queued else None,
        "max_parallel_tasks": max_overlap(spans),
        "first_chunk_start_seconds": round(min(s for s, _ in spans), 1) if spans else None,
        "after_last_chunk_seconds": round(wall - max(e for _, e in spans), 1) if spans else None,
        "other_task_seconds": others,
    }


def _chunk_seconds(
    stack: Any, run_id: str, map_indexes: Iterable[int]
) -> dict[int, dict[str, float]]:
    """Each chunk's stage timers (``seconds``: fetch, validate, land, total) from its XCom."""
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{LANDING_TASK}/xcomEntries/return_value"
    found: dict[int, dict[str, float]] = {}
    for index in map_indexes:
        entry = stack.api("GET", path, params={"map_index": index, "deserialize": True})
        value = entry["value"]
        summary = value if isinstance(value, dict) else json.loads(value)
        found[index] = {k: float(v) for k, v in (summary.get("seconds") or {}).items()}
    return found


def stage_sums(chunk_seconds: dict[int, dict[str, float]]) -> dict[str, float]:
    """The chunks' stage timers summed, in seconds."""
    sums: dict[str, float] = {}
    for seconds in chunk_seconds.values():
        for stage, value in seconds.items():
            sums[stage] = sums.get(stage, 0.0) + value
    return {k: round(v, 1) for k, v in sums.items()}


def run_dag_bench(
    base_url: str,
    ids: Sequence[str],
    chunk_sizes: Sequence[int],
    *,
    parallelism: int = PARALLELISM,
    run_timeout: float = 3600.0,
    home: Path | None = None,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """One run of the example DAG per chunk size on ``ids`` (served at ``base_url``)."""
    import logging

    from airflow_provider_qode.sandbox.airflow_stack import AirflowStack, connection_env

    logging.getLogger("botocore").setLevel(logging.WARNING)  # its credentials line, per client
    results: dict[str, Any] = {"interviews": len(ids), "parallelism": parallelism, "runs": {}}
    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        env = connection_env(base_url, TOKEN, endpoint)
        env["QODE_LAKE_BUCKET"] = "bench-dag-unused"  # every run names its own bucket
        stack = AirflowStack(
            home=home or Path(tmp) / "airflow",
            dags_folder=ROOT / "dags",
            env=env,
            parallelism=parallelism,
        )
        log(f"  starting the Airflow stack (parallelism {parallelism}) ...")
        with stack:
            stack.wait_for_dags([DAG_ID])
            stack.unpause(DAG_ID)
            results["stack_start_seconds"] = round(stack.timings["start_s"], 1)
            s3 = s3_client(endpoint)
            for size in chunk_sizes:
                bucket = f"bench-dag-{size}-{int(time.time())}"
                s3.create_bucket(Bucket=bucket)
                conf = {
                    "interview_ids": list(ids),
                    "s3_bucket": bucket,
                    "s3_prefix": PREFIX,
                    "chunk_size": size,
                }
                log(f"  {DAG_ID}: {len(ids)} interviews, chunk_size {size} ...")
                run_id = stack.trigger(DAG_ID, conf)
                run = stack.wait_for_run(DAG_ID, run_id, timeout=run_timeout)
                tis = stack.task_instances(DAG_ID, run_id)
                if run["state"] != "success":
                    raise RuntimeError(f"{DAG_ID} run {run_id} {run['state']}\n{stack.tails()}")
                indexes = [t["map_index"] for t in tis if t["task_id"] == LANDING_TASK]
                seconds = _chunk_seconds(stack, run_id, indexes)
                totals = {i: s.get("total", sum(s.values())) for i, s in seconds.items()}
                figures = analyse_run(run, tis, totals, len(ids))
                figures["chunk_stage_seconds"] = stage_sums(seconds)
                results["runs"][str(size)] = figures
                log(
                    f"    {figures['wall_seconds']} s, {figures['interviews_per_second']}/s, "
                    f"{figures['chunks']} chunks; outside landing "
                    f"{figures['share_outside_landing']:.0%} (no landing task "
                    f"{figures['share_no_landing_task']:.0%}); start-up "
                    f"{figures['mean_startup_seconds']} s per task"
                )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dag", description=__doc__)
    parser.add_argument("--count", type=int, default=5000, help="interviews in the day")
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[250, 500, 2000])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--parallelism", type=int, default=PARALLELISM)
    parser.add_argument("--keep", type=Path, help="keep the Airflow home (logs) here")
    args = parser.parse_args(argv)
    apply_env()
    dataset = replace(Dataset(), count=args.count, latency_ms=args.latency_ms)
    with sandbox(dataset) as base_url:
        results = run_dag_bench(
            base_url,
            dataset.ids(),
            args.chunk_sizes,
            parallelism=args.parallelism,
            home=args.keep,
            log=lambda m: print(m, flush=True),
        )
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
