"""A quick smoke run of the end-to-end benchmark harness: tiny N, no latency, no timing asserts.

It starts the stand-in and moto's S3 server in their own processes and runs every stage of the
smoke plan once (the real DAG stage has its own stack test), then checks that the results dict
is well formed and that every target of the table got a verdict. Figures are never asserted: a
benchmark is not a test of speed. The arithmetic of the real-DAG report is checked on its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("moto.server")

VERDICTS = ("PASS", "FAIL", "REPORT", "not measured")


# Six fresh interpreters, five of them importing GX: about a minute idle, more on a shared box.
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bench_harness_smoke(tmp_path: Path) -> None:
    from bench.e2e import PLANS, run, table

    out = tmp_path / "latest.json"
    results = run("smoke", latency_ms=0, profile=False, out=out, log=lambda _m: None)

    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    assert results["machine"]["cpus"]
    assert results["machine"]["versions"]["great-expectations"]
    plan = PLANS["smoke"]
    runs = results["runs"]
    pairs = range(1, plan.warm_pairs + 1)
    expected = (
        {"diy", "blob", f"provider_{plan.scaling_n}"}
        | {f"warm_provider_{i}" for i in pairs}
        | {f"warm_ceiling_{i}" for i in pairs}
        | {f"warm_ceiling_index_{i}" for i in pairs}
        # The chunk size of the scaling run is read from its first checkpoint: no run of its own.
        | {f"memory_chunk_{size}" for size, _ in plan.memory if size != plan.chunk}
    )
    assert expected <= set(runs)
    assert "dag" not in results["stages"]  # the smoke plan has no real DAG
    for name, r in runs.items():
        for key in ("seconds", "cpu_seconds", "peak_rss_mib", "import_seconds"):
            assert isinstance(r[key], int | float) and r[key] >= 0, (name, key)
        if name != "blob":
            assert r["n"] > 0 and r["interviews_per_second"] > 0, name
            assert r["cpu_seconds_per_1000"] is not None, name
    for name in (n for n in expected if "provider" in n or n in ("diy",) or "memory" in n):
        r = runs[name]
        assert r["published"] + r["quarantined"] + r.get("missing", 0) == r["n"], name
        assert r.get("failed", 0) == 0, name
    for i in pairs:
        assert runs[f"warm_ceiling_{i}"]["objects"] == 2 * plan.warm_n
        assert runs[f"warm_ceiling_index_{i}"]["objects"] == 3 * plan.warm_n
    assert runs["blob"]["bytes"] == plan.blob_bytes
    assert results["gate"]["interviews"] == plan.gate_n
    assert results["gate"]["published"] + results["gate"]["quarantined"] == plan.gate_n

    summary = results["summary"]
    assert len(summary["warm_ratios"]) == plan.warm_pairs
    for key in (
        "warm_provider_vs_ceiling",
        "warm_provider_vs_ceiling_index",
        "provider_vs_diy",
        "scaling_ratio",
    ):
        assert isinstance(summary[key], float), key
    assert set(summary["chunk_peak_rss_mib"]) == {str(size) for size, _ in plan.memory}
    targets = {t["key"]: t for t in summary["targets"]}
    # Every #11 target and #10's curate share has a row, each with a verdict.
    for key in ("cold", "warm", "diy", "scaling", "blob", "gate", "dag", "curate"):
        assert key in targets, key
    assert {f"memory_{size}" for size, _ in plan.memory} <= set(targets)
    assert all(t["status"] in VERDICTS for t in targets.values())
    assert targets["warm_index"]["status"] == "REPORT"
    measured = ("warm", "diy", "scaling", "blob", "gate", *(f"memory_{s}" for s, _ in plan.memory))
    assert all(targets[k]["status"] in ("PASS", "FAIL") for k in measured)
    assert targets["dag"]["status"] == "not measured"
    text = table(results)
    assert "warm_provider_1" in text and "status" in text


def test_the_real_dag_report_splits_wall_time_by_what_the_landing_tasks_did() -> None:
    from bench.dag import analyse_run, covered_seconds, max_overlap

    assert covered_seconds([(0, 10), (5, 12), (20, 25)]) == 17
    assert covered_seconds([(0, 10), (2, 3)]) == 10
    assert max_overlap([(0, 10), (5, 12), (11, 25)]) == 2

    def at(s: float) -> str:
        return f"2026-12-01T00:00:{s:06.3f}Z"

    run = {"state": "success", "queued_at": at(0), "end_date": at(40)}
    tis = [
        {"task_id": "finished_interview_ids", "start_date": at(2), "end_date": at(6)},
        # Two chunks side by side, each 4 s of start-up before its ingest_chunk.
        {
            "task_id": "land_chunk",
            "map_index": 0,
            "queued_when": at(7),
            "start_date": at(8),
            "end_date": at(28),
        },
        {
            "task_id": "land_chunk",
            "map_index": 1,
            "queued_when": at(7),
            "start_date": at(9),
            "end_date": at(30),
        },
        {"task_id": "summarize", "start_date": at(33), "end_date": at(36)},
    ]
    figures = analyse_run(run, tis, {0: 16.0, 1: 17.0}, interviews=400)

    assert figures["wall_seconds"] == 40 and figures["interviews_per_second"] == 10
    assert figures["chunks"] == 2 and figures["max_parallel_tasks"] == 2
    # No landing task alive: 0-8 and 30-40, 18 of 40 s.
    assert figures["share_no_landing_task"] == pytest.approx(18 / 40, abs=1e-3)
    # No chunk inside ingest_chunk: 0-12 and 30-40, 22 of 40 s.
    assert figures["share_outside_landing"] == pytest.approx(22 / 40, abs=1e-3)
    assert figures["startup_share_of_task_time"] == pytest.approx(8 / 41, abs=1e-3)
    assert figures["mean_startup_seconds"] == 4 and figures["mean_queued_seconds"] == 1.5
    assert figures["other_task_seconds"] == {"finished_interview_ids": 4, "summarize": 3}


def test_the_bench_reads_the_example_dags_chunk_size_default() -> None:
    import runpy

    from bench.dag import DAG_ID
    from bench.e2e import ROOT, dag_default_chunk_size

    namespace = runpy.run_path(str(ROOT / "dags" / f"{DAG_ID}.py"))
    dag = namespace["dag"]
    assert dag_default_chunk_size() == dag.params["chunk_size"]
    # The DAG reference in the docs states the same default.
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert f"| `chunk_size` | `{dag.params['chunk_size']}` (integer" in index


def test_the_full_plan_measures_what_the_docs_say() -> None:
    """docs/development.md#benchmarks: sizes and bounds of each stage of ``make bench``."""
    from bench.e2e import PLANS, STAGES

    full = PLANS["full"]
    assert (full.diy_n, full.warm_n, full.warm_pairs) == (20, 1_000, 3)
    assert (full.scaling_n, full.chunk) == (10_000, 5_000)
    assert full.memory == ((5_000, 600.0), (20_000, 700.0))
    assert (full.blob_bytes, full.gate_n, full.cold_sizes) == (2**30, 10_000, (500, 2_000))
    assert (full.curate_n, full.curate_chunk_n) == (10_000, 1_000)
    assert (full.dag_n, full.dag_chunk_sizes) == (5_000, (250, 500, 2_000))
    # --quick runs every judged stage at smaller sizes; not the real DAG (reported, and run by
    # tests/e2e), nor the profile unless asked.
    quick = PLANS["quick"]
    assert all(v for k, v in vars(quick).items() if isinstance(v, int) and k != "dag_n")
    assert quick.dag_n == 0 and quick.memory and quick.cold_sizes
    assert set(STAGES) == {
        "diy",
        "warm",
        "scaling",
        "memory",
        "blob",
        "gate",
        "cold",
        "curate",
        "dag",
        "profile",
    }
