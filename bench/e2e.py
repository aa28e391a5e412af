"""End-to-end benchmark: DIY baseline vs this provider vs the transport ceiling (``make bench``).

Everything on 127.0.0.1: the stand-in API in its own process (fixed seed, realistic payloads,
100 ms added latency per request) and moto's S3 server in its own process, restarted for every
contestant so none of them sees another's objects. Each contestant runs in a fresh interpreter
(:mod:`bench.contestants`), so its peak RSS and CPU seconds are its own; imports (GX ~8-10 s)
are paid before the clock starts and reported apart.

``python -m bench [--quick] [--profile] [--only NAME ...]``; results in
``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, replace
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

#: Default and --quick sizes.
PLANS: dict[str, dict[str, Any]] = {
    # Every provider run uses chunks of ``chunk`` ids, one after another in one process (as the
    # DAG's mapped tasks would, serially). Scaling: ms/interview at N = 1k, 5k (the checkpoint
    # after the first chunk of the 10k run) and 10k. The 10k run's peak RSS is that of landing
    # chunks of 5,000 interviews.
    "full": {
        "diy_n": 20,
        "provider_n": (1_000, 2_000, 10_000),
        "ceiling_n": 1_000,
        "scaling_n": (1_000, 5_000, 10_000),
        "chunk": 5_000,
        "blob_bytes": 2**30,
        "profile_n": 2_000,
        "curate_partition_n": 10_000,
        "curate_chunk_n": 1_000,
    },
    "quick": {
        "diy_n": 10,
        "provider_n": (200, 500, 1_000),
        "ceiling_n": 200,
        "scaling_n": (200, 500, 1_000),
        "chunk": 500,
        "blob_bytes": 128 * 2**20,
        "profile_n": 500,
        "curate_partition_n": 1_000,
        "curate_chunk_n": 200,
    },
    # For the unit smoke test: no latency, tiny N, everything still exercised.
    "smoke": {
        "diy_n": 2,
        "provider_n": (2, 6),
        "ceiling_n": 2,
        "scaling_n": (2, 3, 6),
        "chunk": 3,
        "blob_bytes": 6 * 2**20,
        "profile_n": 3,
        "curate_partition_n": 4,
        "curate_chunk_n": 3,
    },
}


def _defaults() -> tuple[int, int]:
    """The provider's default fetch concurrency and S3 writer threads (what the task uses)."""
    import inspect

    from airflow_provider_qode.hooks.connection import QodeConnectionConfig
    from airflow_provider_qode.ingest import ingest_chunk

    s3 = inspect.signature(ingest_chunk).parameters["s3_concurrency"].default
    return QodeConnectionConfig().max_concurrency, int(s3)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def run(
    plan_name: str = "full",
    *,
    only: set[str] | None = None,
    latency_ms: float = 100.0,
    profile: bool = False,
    out: Path | None = None,
    log: Any = print,
) -> dict[str, Any]:
    apply_env()
    plan = PLANS[plan_name]
    needed = max(
        [
            plan["diy_n"],
            plan["ceiling_n"],
            *plan["provider_n"],
            *plan["scaling_n"],
            plan["profile_n"] if profile else 0,
        ]
    )
    dataset = replace(Dataset(), count=needed, latency_ms=latency_ms)
    concurrency, s3_concurrency = _defaults()
    want = lambda name: only is None or name in only  # noqa: E731
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "plan": plan_name,
        "plan_sizes": {k: list(v) if isinstance(v, tuple) else v for k, v in plan.items()},
        "machine": machine_info(),
        "dataset": asdict(dataset),
        "provider_defaults": {"max_concurrency": concurrency, "s3_concurrency": s3_concurrency},
        "runs": {},
    }
    runs: dict[str, Any] = results["runs"]
    ids = dataset.ids()
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp) / "ids.json"
        ids_file.write_text(json.dumps(ids))
        t0 = time.perf_counter()
        log(f"starting the stand-in ({needed} interviews, {latency_ms:g} ms latency) ...")
        with sandbox(dataset) as base_url:
            results["sandbox_start_seconds"] = round(time.perf_counter() - t0, 1)

            def child(name: str, kind: str, n: int = 0, *extra: str) -> dict[str, Any]:
                log(f"  {name} ...")
                with moto_server() as endpoint:
                    env = connection_env(base_url, endpoint)
                    args = ["--child", kind, "--ids-file", str(ids_file), "-n", str(n), *extra]
                    result = run_child("bench.contestants", args[1:], env)
                runs[name] = result
                rate = result.get("interviews_per_second")
                log(
                    f"    {result['seconds']} s"
                    + (f", {rate}/s" if rate else "")
                    + f", peak RSS {result['peak_rss_mib']} MiB"
                )
                return result

            if want("diy"):
                child("diy", "diy", plan["diy_n"])
            chunk = str(plan["chunk"])
            if want("provider"):
                for n in plan["provider_n"]:
                    child(f"provider_{n}", "provider", n, "--chunk", chunk)
            if want("ceiling"):
                child(
                    "ceiling",
                    "ceiling",
                    plan["ceiling_n"],
                    "--concurrency",
                    str(concurrency),
                    "--s3-concurrency",
                    str(s3_concurrency),
                )
            if want("curate"):
                from bench.curate import stage

                results["curate"] = stage(
                    base_url,
                    ids_file,
                    partition_n=plan["curate_partition_n"],
                    chunk_n=plan["curate_chunk_n"],
                    log=log,
                )
            if want("memory"):
                child("blob", "blob", 0, "--blob-bytes", str(plan["blob_bytes"]))
            if profile and want("profile"):
                RESULTS.mkdir(exist_ok=True)
                path = RESULTS / "profile-provider.txt"
                child(
                    "profile",
                    "provider",
                    plan["profile_n"],
                    "--chunk",
                    chunk,
                    "--profile",
                    str(path),
                )
                results["profile_file"] = str(path.relative_to(ROOT))
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["summary"] = summarize(results)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return results


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    runs = results["runs"]
    plan = results["plan_sizes"]
    summary: dict[str, Any] = {}
    diy = runs.get("diy")
    ceiling = runs.get("ceiling")
    biggest = max((n for n in plan["provider_n"] if f"provider_{n}" in runs), default=None)
    summary["provider_n"] = biggest
    same_as_ceiling = runs.get(f"provider_{plan['ceiling_n']}")
    provider = runs.get(f"provider_{biggest}") if biggest else None
    rate = lambda r: r.get("interviews_per_second") if r else None  # noqa: E731
    summary["provider_vs_diy"] = _ratio(rate(provider), rate(diy))
    summary["provider_vs_ceiling"] = _ratio(rate(same_as_ceiling or provider), rate(ceiling))
    small, large = plan["scaling_n"][0], plan["scaling_n"][-1]
    points: dict[int, float] = {}
    for name, r in runs.items():
        if name.startswith("provider_"):
            points.setdefault(r["n"], r["ms_per_interview"])
            for c in r.get("checkpoints", []):
                points.setdefault(c["n"], c["ms_per_interview"])
    summary["scaling_ms_per_interview"] = {n: points.get(n) for n in plan["scaling_n"]}
    summary["scaling_ratio"] = _ratio(points.get(large), points.get(small))
    blob = runs.get("blob")
    summary["blob_rss_growth_mib"] = blob and blob["rss_growth_mib"]
    chunked = runs.get(f"provider_{max(plan['provider_n'])}")
    summary["chunk_size"] = plan["chunk"]
    summary["chunk_peak_rss_mib"] = chunked and chunked["peak_rss_mib"]
    from bench.curate import SHARE_TARGET, check

    curate = results.get("curate") or {}
    summary["curate_rows_per_second"] = curate.get("rows_per_second")
    summary["curate_share_of_landing"] = curate.get("share_of_landing")
    summary["targets"] = {
        "provider >= 20x DIY": _check(summary["provider_vs_diy"], 20, ">="),
        "provider >= 60% of ceiling": _check(summary["provider_vs_ceiling"], 0.6, ">="),
        "scaling 10k/1k <= 1.2": _check(summary["scaling_ratio"], 1.2, "<="),
        "1 GiB asset RSS growth < 100 MiB": _check(summary["blob_rss_growth_mib"], 100, "<"),
        f"chunk of {plan['chunk']} peak RSS < 1.5 GiB": _check(
            summary["chunk_peak_rss_mib"], 1536, "<"
        ),
        f"curate < {SHARE_TARGET:.0%} of a chunk's landing": check(curate),
    }
    return summary


def _check(value: float | None, limit: float, op: str) -> str:
    if value is None:
        return "not measured"
    ok = value >= limit if op == ">=" else value <= limit if op == "<=" else value < limit
    return f"{'PASS' if ok else 'FAIL'} ({value} {op} {limit})"


def table(results: dict[str, Any]) -> str:
    rows = [("run", "N", "wall s", "int/s", "CPU s/1k", "peak RSS MiB", "import s", "notes")]
    for name, r in results["runs"].items():
        note = ""
        if "stage_seconds" in r:
            note = " ".join(f"{k}={v}" for k, v in r["stage_seconds"].items())
            note += f" chunks={r.get('chunks')} conc={r.get('max_concurrency')}"
        elif name == "diy":
            note = f"gx={r.get('gx_seconds')}s"
        elif name == "blob":
            note = f"{r['bytes'] / 2**20:.0f} MiB, RSS growth {r['rss_growth_mib']} MiB"
        elif name == "ceiling":
            note = f"conc={r.get('max_concurrency')} s3={r.get('s3_concurrency')}"
        rows.append(
            (
                name,
                str(r.get("n") or ""),
                str(r["seconds"]),
                str(r.get("interviews_per_second") or ""),
                str(r.get("cpu_seconds_per_1000") or ""),
                str(r["peak_rss_mib"]),
                str(r["import_seconds"]),
                note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    s = results["summary"]
    sizes = results["plan_sizes"]["scaling_n"]
    lines += [
        "",
        f"provider/DIY rate: {s['provider_vs_diy']}   provider/ceiling rate: "
        f"{s['provider_vs_ceiling']}   scaling (ms/interview {sizes[-1]}"
        f" / {sizes[0]}): {s['scaling_ratio']}",
    ]
    if s.get("curate_rows_per_second"):
        lines.append(
            f"curate: {s['curate_rows_per_second']} rows/s rebuilding a partition of "
            f"{results['plan_sizes']['curate_partition_n']} interviews, "
            f"{s['curate_share_of_landing']} of a {results['plan_sizes']['curate_chunk_n']}-"
            "interview chunk's landing time"
        )
    lines += [f"  {k}: {v}" for k, v in s["targets"].items()]
    lines.append(f"total wall time {results['wall_seconds']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller N (about 2 minutes)")
    parser.add_argument("--only", nargs="*", help="diy provider ceiling curate memory profile")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the provider (pyinstrument) on the ceiling's N",
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
