"""Benchmark of the quality gate: time and peak memory to validate N interviews in one batch.

Each size runs in a fresh interpreter (``python -m bench.validate --child N``) so that peak RSS
(``ru_maxrss``) belongs to that size alone; tracemalloc would slow the run down and miss what
numpy and pandas allocate.

Payloads come from the sandbox generator (``SandboxDataset``: 5 questions x 3 agents x 4
criteria, 10 % broken) when it is importable, else from the valid v4 example scaled up to the
same sizes with consistent numbers and unique ids.

Usage: ``python -m bench.validate [N ...]`` (default 1000 10000).
"""

from __future__ import annotations

import copy
import json
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "examples"
DEFAULT_SIZES = (1000, 10_000)
QUESTIONS, AGENTS, CRITERIA = 5, 3, 4


def _rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _scaled_bodies(count: int) -> list[tuple[str, bytes]]:
    """The v4 example with 5 questions x 3 agents x 4 criteria, consistent sums, unique ids."""
    base = json.loads((EXAMPLE / "valid_pf_domain_3p_v4.json").read_text())
    template_q = base["agent_response_summary"][0]
    bodies = []
    for n in range(count):
        doc = copy.deepcopy(base)
        candidate = str(uuid.UUID(int=n + 1))
        doc["candidate_id"] = candidate
        doc["interview_id"] = f"{uuid.UUID(int=(1 << 64) + n)}_{candidate}"
        questions = []
        for q in range(QUESTIONS):
            question = copy.deepcopy(template_q)
            question["question"] = {"text": f"Question {q + 1}?"}
            agents = []
            for a in range(AGENTS):
                agent = copy.deepcopy(template_q["agents"][a % len(template_q["agents"])])
                agent["id"] = f"agent_{a}_1"
                criteria = {}
                for c in range(CRITERIA):
                    score, weight = (n + q + a + c) % 6, 2 + 2 * ((a + c) % 3)
                    criteria[f"criterion_{c}"] = {
                        "score": score,
                        "weight": weight,
                        "weighted": score * weight,
                        "maximum_score": 5 * weight,
                    }
                agent["criteria"] = criteria
                agent["total_weighted_score"] = sum(x["weighted"] for x in criteria.values())
                agent["maximum_score"] = sum(x["maximum_score"] for x in criteria.values())
                agent["step6_summary"] = {"summary": "Summary.", **dict.fromkeys(criteria, "Why.")}
                agents.append(agent)
            question["agents"] = agents
            questions.append(question)
        doc["agent_response_summary"] = questions
        bodies.append((doc["interview_id"], json.dumps(doc).encode()))
    return bodies


def _bodies(count: int) -> tuple[str, list[tuple[str, bytes]]]:
    try:
        from airflow_provider_qode.sandbox.generator import SandboxDataset
    except ImportError:
        return "scaled example", _scaled_bodies(count)
    dataset = SandboxDataset(
        seed=42,
        count=count,
        broken_share=0.1,
        questions=QUESTIONS,
        agents=AGENTS,
        criteria=CRITERIA,
    )
    return "SandboxDataset", [(i, dataset.body(i)) for i in dataset.ids]


def child(count: int) -> dict[str, Any]:
    """Measure one size in this process (called in a fresh interpreter)."""
    started = time.perf_counter()
    from airflow_provider_qode.quality import gate

    gate._import_gx()  # import cost is paid once per worker, not per batch: measure it apart
    import_seconds = time.perf_counter() - started

    source, bodies = _bodies(count)
    items = [gate.FetchedInterview(i, raw) for i, raw in bodies]
    del bodies
    payload_mib = sum(len(item.raw) for item in items) / 2**20
    rss_before = _rss_mib()

    started = time.perf_counter()
    batch = gate.validate_batch(items)
    seconds = time.perf_counter() - started
    return {
        "interviews": count,
        "payloads": source,
        "payload_mib": round(payload_mib, 1),
        "import_seconds": round(import_seconds, 2),
        "validate_seconds": round(seconds, 2),
        "interviews_per_second": round(count / seconds, 1),
        "published": len(batch.published),
        "quarantined": len(batch.quarantined),
        "table_rows": batch.table_rows,
        "rss_before_validate_mib": round(rss_before, 1),
        "peak_rss_mib": round(_rss_mib(), 1),
    }


def run(sizes: tuple[int, ...] | list[int] = DEFAULT_SIZES) -> list[dict[str, Any]]:
    """Run each size in a fresh subprocess and return its measurements."""
    results = []
    for size in sizes:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.validate", "--child", str(size)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(int(argv[1]))))
        return 0
    sizes = [int(a) for a in argv] or list(DEFAULT_SIZES)
    for r in run(sizes):
        print(
            f"{r['interviews']:>7} interviews ({r['payloads']}, {r['payload_mib']} MiB): "
            f"{r['validate_seconds']} s = {r['interviews_per_second']}/s, "
            f"peak RSS {r['peak_rss_mib']} MiB "
            f"(before validate {r['rss_before_validate_mib']} MiB; "
            f"GX import {r['import_seconds']} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
