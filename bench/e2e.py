"""End-to-end benchmark (``make bench``): every target of issue #11 (and #10's curate stage),
each with PASS/FAIL, in one run.

Everything on 127.0.0.1: the stand-in API in its own process (fixed seed, realistic payloads,
100 ms added latency per request) and moto's S3 server in its own process, restarted for every
contestant so none of them sees another's objects. Each contestant runs in a fresh interpreter
(:mod:`bench.contestants`), so its peak RSS and CPU seconds are its own; the warm contestants pay
their imports before the clock starts and report them apart, the cold ones (:mod:`bench.cold`)
count them. The stages, in order (``--only`` takes their names):

``diy``      the do-it-yourself baseline (stock hooks, one GX run per interview)
``warm``     provider and transport ceiling at 1,000, three pairs, one right after the other;
             each pair also gets a ceiling run that adds the provider's index PUT (reported)
``scaling``  provider at 10,000 in chunks of 5,000 (ms per interview against the 1,000 runs)
``memory``   peak RSS per chunk size: a chunk of 5,000 (the scaling run's first chunk, a fresh
             process landing one chunk) and a chunk of 20,000 on 20,000 ids
``blob``     one 1 GiB asset streamed API -> S3 (RSS growth)
``gate``     the quality gate alone on 10,000 interviews (:mod:`bench.validate`)
``cold``     a fresh task process per chunk, imports on the clock (:func:`measure_cold`)
``curate``   #10: rebuilding curated partitions (:func:`measure_curate`)
``dag``      the real DAG on the real scheduler, per chunk size (:mod:`bench.dag`; reported)
``profile``  only with ``--profile``: pyinstrument over a provider run

``python -m bench [--quick] [--profile] [--only STAGE ...]``; results in
``bench/results/latest.json``. ``--quick`` runs every stage at smoke sizes (figures indicative,
the target bounds are those of the full plan).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Dataset,
    apply_env,
    connection_env,
    machine_info,
    moto_server,
    run_child,
    sandbox,
)

RESULTS = Path(__file__).resolve().parent / "results"
STAGES = ("diy", "warm", "scaling", "memory", "blob", "gate", "cold", "curate", "dag", "profile")


@dataclass(frozen=True)
class Plan:
    """The sizes of one benchmark run."""

    diy_n: int
    warm_n: int
    warm_pairs: int
    #: Every warm and scaling provider run lands chunks of ``chunk`` ids one after another in
    #: one process (as the DAG's mapped tasks would, serially).
    chunk: int
    scaling_n: int
    #: chunk size -> peak RSS bound (MiB). A size equal to ``chunk`` is read from the scaling
    #: run's first checkpoint (one chunk landed in a fresh process); any other gets its own run
    #: of one chunk of that size.
    memory: tuple[tuple[int, float], ...]
    blob_bytes: int
    gate_n: int
    cold_sizes: tuple[int, ...]
    curate_n: int
    curate_chunk_n: int
    dag_n: int
    dag_chunk_sizes: tuple[int, ...]
    profile_n: int


PLANS: dict[str, Plan] = {
    "full": Plan(
        diy_n=20,
        warm_n=1_000,
        warm_pairs=3,
        chunk=5_000,
        scaling_n=10_000,
        memory=((5_000, 600.0), (20_000, 700.0)),
        blob_bytes=2**30,
        gate_n=10_000,
        cold_sizes=(500, 2_000),
        curate_n=10_000,
        curate_chunk_n=1_000,
        dag_n=5_000,
        dag_chunk_sizes=(250, 500, 2_000),
        profile_n=2_000,
    ),
    # Every judged stage at smoke sizes, under 3 minutes on an idle 2-core machine; the real
    # DAG is left out (its stack alone takes half a minute; tests/e2e runs it).
    "quick": Plan(
        diy_n=5,
        warm_n=200,
        warm_pairs=1,
        chunk=300,
        scaling_n=600,
        memory=((300, 600.0),),
        blob_bytes=128 * 2**20,
        gate_n=500,
        cold_sizes=(100, 200),
        curate_n=300,
        curate_chunk_n=100,
        dag_n=0,
        dag_chunk_sizes=(),
        profile_n=300,
    ),
    # For the unit smoke test: tiny N, no real DAG (the stack has its own end-to-end test).
    "smoke": Plan(
        diy_n=2,
        warm_n=4,
        warm_pairs=1,
        chunk=3,
        scaling_n=6,
        memory=((3, 600.0),),
        blob_bytes=6 * 2**20,
        gate_n=20,
        cold_sizes=(3,),
        curate_n=10,
        curate_chunk_n=4,
        dag_n=0,
        dag_chunk_sizes=(),
        profile_n=3,
    ),
}


def _defaults() -> tuple[int, int]:
    """The provider's default fetch concurrency and S3 writer threads (what the task uses)."""
    import inspect

    from airflow_provider_qode.hooks.connection import QodeConnectionConfig
    from airflow_provider_qode.ingest import ingest_chunk

    s3 = inspect.signature(ingest_chunk).parameters["s3_concurrency"].default
    return QodeConnectionConfig().max_concurrency, int(s3)


def dag_default_chunk_size() -> int:
    """The example DAG's ``chunk_size`` Param default (what a run without conf lands with)."""
    import ast

    source = (ROOT / "dags" / "qode_interview_ingestion.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg == "params":
            for key, value in zip(node.value.keys, node.value.values, strict=True):  # type: ignore[attr-defined]
                if isinstance(key, ast.Constant) and key.value == "chunk_size":
                    return int(value.args[0].value)
    raise LookupError("chunk_size Param not found in the example DAG")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


@dataclass
class StageContext:
    """What a stage gets: the running stand-in, the ids, the plan, where results go."""

    plan: Plan
    base_url: str
    ids: list[str]
    ids_file: Path
    latency_ms: float
    concurrency: int
    s3_concurrency: int
    log: Callable[[str], Any]
    runs: dict[str, Any] = field(default_factory=dict)

    def child(self, name: str, kind: str, n: int = 0, *extra: str) -> dict[str, Any]:
        """One :mod:`bench.contestants` run in a fresh interpreter against a fresh moto server."""
        self.log(f"  {name} ...")
        with moto_server() as endpoint:
            env = connection_env(self.base_url, endpoint)
            args = [kind, "--ids-file", str(self.ids_file), "-n", str(n), *extra]
            result = run_child("bench.contestants", args, env)
        self.runs[name] = result
        rate = result.get("interviews_per_second")
        self.log(
            f"    {result['seconds']} s"
            + (f", {rate}/s" if rate else "")
            + f", peak RSS {result['peak_rss_mib']} MiB"
        )
        return result

    def provider(self, name: str, n: int, chunk: int, *extra: str) -> dict[str, Any]:
        return self.child(name, "provider", n, "--chunk", str(chunk), *extra)

    def ceiling(self, name: str, n: int, *extra: str) -> dict[str, Any]:
        conc = (
            "--concurrency",
            str(self.concurrency),
            "--s3-concurrency",
            str(self.s3_concurrency),
        )
        return self.child(name, "ceiling", n, *conc, *extra)


# --- the stages that live in modules of their own ----------------------------------------------


def measure_cold(ctx: StageContext) -> dict[str, Any] | None:
    """Target 1: cold task process per chunk (``bench/cold.py``'s :func:`run_cold`).

    Returns ``{"runs": {...}, "ratios": {"500": provider/ceiling, "2000": ...}}``.
    """
    from bench.cold import run_cold

    result: dict[str, Any] = run_cold(
        ctx.base_url, None, ctx.ids_file, ctx.plan.cold_sizes, log=ctx.log
    )
    return result


def measure_curate(ctx: StageContext) -> dict[str, Any] | None:
    """#10's curate stage (``bench/curate.py``'s ``stage``).

    Rebuilding a partition of ``plan.curate_n`` interviews (rows/s), and the rebuild after one
    landing chunk of ``plan.curate_chunk_n`` over that chunk's landing time
    (``share_of_landing``).
    """
    from bench.curate import stage

    result: dict[str, Any] = stage(
        ctx.base_url,
        ctx.ids_file,
        partition_n=ctx.plan.curate_n,
        chunk_n=ctx.plan.curate_chunk_n,
        log=ctx.log,
    )
    return result


def measure_gate(ctx: StageContext) -> dict[str, Any]:
    """The quality gate alone on ``plan.gate_n`` interviews (:mod:`bench.validate`)."""
    from bench import validate

    ctx.log(f"  gate ({ctx.plan.gate_n} interviews, bench.validate) ...")
    [result] = validate.run([ctx.plan.gate_n])
    ctx.log(f"    {result['validate_seconds']} s, peak RSS {result['peak_rss_mib']} MiB")
    return result


def measure_dag(ctx: StageContext) -> dict[str, Any]:
    """The example DAG on the real scheduler, once per chunk size (:mod:`bench.dag`)."""
    from bench.dag import run_dag_bench

    default = dag_default_chunk_size()
    sizes = sorted({*ctx.plan.dag_chunk_sizes, default})
    result = run_dag_bench(ctx.base_url, ctx.ids[: ctx.plan.dag_n], sizes, log=ctx.log)
    result["default_chunk_size"] = default
    return result


# --- the run -----------------------------------------------------------------------------------


def run(
    plan_name: str = "full",
    *,
    only: set[str] | None = None,
    latency_ms: float = 100.0,
    profile: bool = False,
    out: Path | None = None,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    apply_env()
    plan = PLANS[plan_name]
    unknown = (only or set()) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; stages: {', '.join(STAGES)}")

    def want(stage: str) -> bool:
        if stage == "profile" and not profile:
            return False
        if stage == "dag" and not plan.dag_n:
            return False
        return only is None or stage in only

    memory_runs = [c for c, _ in plan.memory if c != plan.chunk or not want("scaling")]
    needed = max(
        plan.diy_n,
        plan.warm_n,
        plan.scaling_n,
        *(c for c, _ in plan.memory),
        plan.gate_n,
        *plan.cold_sizes,
        plan.curate_chunk_n,
        plan.dag_n,
        plan.profile_n,
    )
    dataset = replace(Dataset(), count=needed, latency_ms=latency_ms)
    concurrency, s3_concurrency = _defaults()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "plan": plan_name,
        "plan_sizes": asdict(plan),
        "stages": [s for s in STAGES if want(s)],
        "machine": machine_info(),
        "dataset": asdict(dataset),
        "provider_defaults": {"max_concurrency": concurrency, "s3_concurrency": s3_concurrency},
        "runs": {},
        "stage_seconds": {},
    }
    ids = dataset.ids()
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp) / "ids.json"
        ids_file.write_text(json.dumps(ids))
        t0 = time.perf_counter()
        log(f"starting the stand-in ({needed} interviews, {latency_ms:g} ms latency) ...")
        with sandbox(dataset) as base_url:
            results["sandbox_start_seconds"] = round(time.perf_counter() - t0, 1)
            ctx = StageContext(
                plan=plan,
                base_url=base_url,
                ids=ids,
                ids_file=ids_file,
                latency_ms=latency_ms,
                concurrency=concurrency,
                s3_concurrency=s3_concurrency,
                log=log,
                runs=results["runs"],
            )
            for stage in STAGES:
                if not want(stage):
                    continue
                log(f"[{stage}]")
                t0 = time.perf_counter()
                value = _STAGE_RUNNERS[stage](ctx, memory_runs)
                if value is not None:
                    results[stage] = value
                results["stage_seconds"][stage] = round(time.perf_counter() - t0, 1)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["summary"] = summarize(results)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return results


def _diy(ctx: StageContext, _: list[int]) -> None:
    ctx.child("diy", "diy", ctx.plan.diy_n)


def _warm(ctx: StageContext, _: list[int]) -> None:
    # Each provider run right before its own ceiling run: a pair sees the same machine load.
    for i in range(1, ctx.plan.warm_pairs + 1):
        ctx.provider(f"warm_provider_{i}", ctx.plan.warm_n, ctx.plan.chunk)
        ctx.ceiling(f"warm_ceiling_{i}", ctx.plan.warm_n)
        ctx.ceiling(f"warm_ceiling_index_{i}", ctx.plan.warm_n, "--index-doc")


def _scaling(ctx: StageContext, _: list[int]) -> None:
    ctx.provider(f"provider_{ctx.plan.scaling_n}", ctx.plan.scaling_n, ctx.plan.chunk)


def _memory(ctx: StageContext, memory_runs: list[int]) -> None:
    for size in memory_runs:
        ctx.provider(f"memory_chunk_{size}", size, size)


def _blob(ctx: StageContext, _: list[int]) -> None:
    ctx.child("blob", "blob", 0, "--blob-bytes", str(ctx.plan.blob_bytes))


def _profile(ctx: StageContext, _: list[int]) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "profile-provider.txt"
    ctx.provider("profile", ctx.plan.profile_n, ctx.plan.chunk, "--profile", str(path))
    return {"file": str(path.relative_to(ROOT))}


_STAGE_RUNNERS: dict[str, Callable[[StageContext, list[int]], dict[str, Any] | None]] = {
    "diy": _diy,
    "warm": _warm,
    "scaling": _scaling,
    "memory": _memory,
    "blob": _blob,
    "gate": lambda ctx, _: measure_gate(ctx),
    "cold": lambda ctx, _: measure_cold(ctx),
    "curate": lambda ctx, _: measure_curate(ctx),
    "dag": lambda ctx, _: measure_dag(ctx),
    "profile": _profile,
}


# --- the verdicts ------------------------------------------------------------------------------


def _target(
    key: str, label: str, value: float | None, op: str | None, limit: float | None, unit: str = ""
) -> dict[str, Any]:
    """One row of the targets table; ``op`` None is a figure reported, not judged."""
    if value is None:
        status = "not measured"
    elif op is None or limit is None:
        status = "REPORT"
    else:
        ok = {">=": value >= limit, "<=": value <= limit, "<": value < limit}[op]
        status = "PASS" if ok else "FAIL"
    return {
        "key": key,
        "target": label,
        "value": value,
        "op": op,
        "limit": limit,
        "unit": unit,
        "status": status,
    }


def _checkpoint(run: dict[str, Any] | None, n: int, key: str) -> float | None:
    if not run:
        return None
    for point in run.get("checkpoints", []):
        if point["n"] == n:
            return float(point[key])
    return float(run[key]) if run.get("n") == n else None


def _rate(run: dict[str, Any] | None) -> float | None:
    return run.get("interviews_per_second") if run else None


def _warm_ratios(runs: dict[str, Any], pairs: int, ceiling: str) -> list[float | None]:
    """Provider/ceiling rate of each warm pair that ran both: ``warm_provider_<i>`` against
    ``<ceiling>_<i>``."""
    return [
        _ratio(_rate(runs[f"warm_provider_{i}"]), _rate(runs[f"{ceiling}_{i}"]))
        for i in range(1, pairs + 1)
        if f"warm_provider_{i}" in runs and f"{ceiling}_{i}" in runs
    ]


def _median(ratios: list[float | None]) -> float | None:
    measured = [r for r in ratios if r]
    return statistics.median(measured) if measured else None


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    runs = results["runs"]
    plan = Plan(**{k: _tuples(v) for k, v in results["plan_sizes"].items()})
    summary: dict[str, Any] = {}

    warm_ratios = _warm_ratios(runs, plan.warm_pairs, "warm_ceiling")
    providers = [r for k, r in runs.items() if k.startswith("warm_provider_")]
    summary["warm_ratios"] = warm_ratios
    summary["warm_provider_vs_ceiling"] = _median(warm_ratios)
    summary["warm_provider_vs_ceiling_index"] = _median(
        _warm_ratios(runs, plan.warm_pairs, "warm_ceiling_index")
    )
    warm_rate = statistics.median(_rate(r) for r in providers) if providers else None
    warm_ms = statistics.median(r["ms_per_interview"] for r in providers) if providers else None
    summary["warm_provider_rate"] = warm_rate
    summary["provider_vs_diy"] = _ratio(warm_rate, _rate(runs.get("diy")))
    large = runs.get(f"provider_{plan.scaling_n}")
    summary["scaling_ms_per_interview"] = {
        str(plan.warm_n): warm_ms,
        str(plan.scaling_n): large and large["ms_per_interview"],
    }
    summary["scaling_ratio"] = _ratio(large and large["ms_per_interview"], warm_ms)
    peaks: dict[str, float | None] = {}
    for size, _ in plan.memory:
        peak = _checkpoint(runs.get(f"memory_chunk_{size}"), size, "peak_rss_mib")
        if peak is None and size == plan.chunk:
            peak = _checkpoint(large, size, "peak_rss_mib")
        peaks[str(size)] = peak
    summary["chunk_peak_rss_mib"] = peaks
    blob = runs.get("blob")
    summary["blob_rss_growth_mib"] = blob and blob["rss_growth_mib"]
    gate = results.get("gate")
    summary["gate_seconds"] = gate and gate["validate_seconds"]
    cold = results.get("cold") or {}
    cold_ratios = cold.get("ratios") or {}
    curate = results.get("curate") or {}
    dag = results.get("dag") or {}

    targets = []
    first, *rest = plan.cold_sizes
    targets.append(
        _target(
            "cold",
            f"1 cold task: provider/ceiling, chunk of {first:,}",
            cold_ratios.get(str(first)),
            ">=",
            0.75,
        )
    )
    for size in rest:
        targets.append(
            _target(
                f"cold_{size}",
                f"1 cold task: provider/ceiling, chunk of {size:,}",
                cold_ratios.get(str(size)),
                None,
                None,
            )
        )
    for size, bound in plan.memory:
        targets.append(
            _target(
                f"memory_{size}",
                f"2 peak RSS, chunk of {size:,}",
                peaks[str(size)],
                "<=",
                bound,
                "MiB",
            )
        )
    targets += [
        _target(
            "warm",
            f"3 warm: provider/ceiling at {plan.warm_n:,} (median of {plan.warm_pairs})",
            summary["warm_provider_vs_ceiling"],
            ">=",
            0.85,
        ),
        _target(
            "warm_index",
            f"3 warm: provider/ceiling with the index PUT at {plan.warm_n:,} (median)",
            summary["warm_provider_vs_ceiling_index"],
            None,
            None,
        ),
        _target("diy", "4 provider/DIY rate", summary["provider_vs_diy"], ">=", 20, "x"),
        _target(
            "scaling",
            f"4 ms per interview {plan.scaling_n:,} / {plan.warm_n:,}",
            summary["scaling_ratio"],
            "<=",
            1.1,
        ),
        _target(
            "blob",
            f"4 {plan.blob_bytes / 2**20:,.0f} MiB asset: RSS growth",
            summary["blob_rss_growth_mib"],
            "<",
            100,
            "MiB",
        ),
        _target(
            "gate",
            f"4 quality gate alone, {plan.gate_n:,} interviews",
            summary["gate_seconds"],
            "<",
            10,
            "s",
        ),
    ]
    for size, figures in sorted(dag.get("runs", {}).items(), key=lambda kv: int(kv[0])):
        mark = " (default)" if int(size) == dag.get("default_chunk_size") else ""
        targets.append(
            _target(
                f"dag_{size}",
                f"5 real DAG, {dag['interviews']:,} ids, chunk_size {int(size):,}{mark}: int/s",
                figures["interviews_per_second"],
                None,
                None,
            )
        )
    if not dag.get("runs"):
        targets.append(_target("dag", "5 real DAG", None, None, None))
    targets += [
        _target(
            "curate",
            f"#10 curate: share of landing time, {plan.curate_chunk_n:,} per chunk",
            curate.get("share_of_landing"),
            "<",
            0.15,
        ),
        _target(
            "curate_rate",
            f"#10 curate: rows/s rebuilding {plan.curate_n:,} interviews",
            curate.get("rows_per_second"),
            None,
            None,
        ),
    ]
    summary["targets"] = targets
    return summary


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples a :class:`Plan` holds."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def _run_row(name: str, r: dict[str, Any], note: str) -> tuple[str, ...]:
    """One contestant's row of the runs table."""
    return (
        name,
        str(r.get("n") or ""),
        str(r["seconds"]),
        str(r.get("interviews_per_second") or ""),
        str(r.get("cpu_seconds_per_1000") or ""),
        str(r["peak_rss_mib"]),
        str(r["import_seconds"]),
        str(r.get("machine_busy", "")),
        note,
    )


def table(results: dict[str, Any]) -> str:
    rows = [
        ("run", "N", "wall s", "int/s", "CPU s/1k", "peak RSS MiB", "import s", "busy", "notes")
    ]
    for name, r in results["runs"].items():
        note = ""
        if "stage_seconds" in r:
            note = " ".join(f"{k}={v}" for k, v in r["stage_seconds"].items())
            note += f" chunks={r.get('chunks')} conc={r.get('max_concurrency')}"
        elif name == "diy":
            note = f"gx={r.get('gx_seconds')}s"
        elif name == "blob":
            note = f"{r['bytes'] / 2**20:.0f} MiB, RSS growth {r['rss_growth_mib']} MiB"
        elif "ceiling" in name:
            note = f"conc={r.get('max_concurrency')} s3={r.get('s3_concurrency')}"
        rows.append(_run_row(name, r, note))
    cold = results.get("cold") or {}
    for name, r in (cold.get("runs") or {}).items():
        rows.append(_run_row(name, r, "cold: imports on the clock"))
    lines = _columns(rows) if len(rows) > 1 else []
    dag = results.get("dag") or {}
    if dag.get("runs"):
        rows = [
            (
                "chunk_size",
                "chunks",
                "wall s",
                "int/s",
                "outside landing",
                "no landing task",
                "start-up s/task",
                "ingest s/task",
            )
        ]
        for size, f in sorted(dag["runs"].items(), key=lambda kv: int(kv[0])):
            rows.append(
                (
                    size + (" (default)" if int(size) == dag.get("default_chunk_size") else ""),
                    str(f["chunks"]),
                    str(f["wall_seconds"]),
                    str(f["interviews_per_second"]),
                    f"{f['share_outside_landing']:.0%}",
                    f"{f['share_no_landing_task']:.0%}",
                    str(f["mean_startup_seconds"]),
                    str(f["mean_ingest_seconds"]),
                )
            )
        lines += [
            "",
            f"real DAG: {dag['interviews']:,} interviews, LocalExecutor parallelism "
            f"{dag['parallelism']}, stack start {dag.get('stack_start_seconds')} s",
            *_columns(rows),
        ]
    rows = [("", "target", "value", "bound", "status")]
    for t in results["summary"]["targets"]:
        bound = f"{t['op']} {t['limit']:g}" if t["op"] else ""
        rows.append((t["key"], t["target"], str(t["value"]), bound, t["status"]))
    lines += ["", *_columns(rows)]
    lines.append(f"total wall time {results['wall_seconds']} s ({results['plan']} plan)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="every stage at smoke sizes")
    parser.add_argument("--only", nargs="*", choices=STAGES, metavar="STAGE", help="stages to run")
    parser.add_argument(
        "--profile", action="store_true", help="also profile a provider run (pyinstrument)"
    )
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    results = run(
        "quick" if args.quick else "full",
        only=set(args.only) if args.only else None,
        latency_ms=args.latency_ms,
        profile=args.profile,
        out=args.out,
        log=lambda m: print(m, flush=True),
    )
    print()
    print(table(results))
    print(f"\nresults: {args.out}")
    return 0
