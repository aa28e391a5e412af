"""A quick smoke run of the end-to-end benchmark harness: tiny N, no latency, no timing asserts.

It starts the stand-in and moto's S3 server in their own processes and runs every contestant
(DIY baseline, provider, transport ceiling, memory runs) once, then checks the results dict
is well formed. Figures are never asserted: a benchmark is not a test of speed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("moto.server")


def test_bench_harness_smoke(tmp_path: Path) -> None:
    from bench.e2e import PLANS, run, table

    out = tmp_path / "latest.json"
    results = run("smoke", latency_ms=0, profile=False, out=out, log=lambda _m: None)

    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    assert results["machine"]["cpus"]
    assert results["machine"]["versions"]["great-expectations"]
    plan = PLANS["smoke"]
    runs = results["runs"]
    expected = {"diy", "ceiling", "blob"} | {f"provider_{n}" for n in plan["provider_n"]}
    assert expected <= set(runs)
    for name, r in runs.items():
        for key in ("seconds", "cpu_seconds", "peak_rss_mib", "import_seconds"):
            assert isinstance(r[key], int | float) and r[key] >= 0, (name, key)
        if name != "blob":
            assert r["n"] > 0 and r["interviews_per_second"] > 0, name
            assert r["cpu_seconds_per_1000"] is not None, name
    for name in expected - {"blob", "ceiling"}:
        r = runs[name]
        assert r["published"] + r["quarantined"] + r.get("missing", 0) == r["n"], name
        assert r.get("failed", 0) == 0, name
    assert runs["ceiling"]["objects"] == 2 * runs["ceiling"]["n"]
    assert runs["blob"]["bytes"] == plan["blob_bytes"]
    summary = results["summary"]
    for key in ("provider_vs_diy", "provider_vs_ceiling", "scaling_ratio"):
        assert isinstance(summary[key], float), key
    assert set(summary["targets"]) and all(
        v.startswith(("PASS", "FAIL")) for v in summary["targets"].values()
    )
    assert "provider_" in table(results)
