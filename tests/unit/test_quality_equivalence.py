"""The gate's verdicts do not move when its expectations are rewritten.

Two corpora, two references:

- **Mutated examples**: the contract's example bodies, each changed by one to three seeded
  mutations aimed at the awkward corners of the rules (nulls, NaN, infinities, case and white
  space in ``status``, partial intervals, black-screen times in odd forms, coverage counts that
  disagree, optional blocks on the wrong interview type...). Their per-interview failed rules and
  warnings were recorded from the gate as it was before the suites moved their conditions into
  GX ``row_condition``s (``tests/data/quality_equivalence.json``), so a change of verdict on any
  of them shows up here.
- **Generated payloads**: the sandbox generator's seeded datasets, held to the generator's own
  ``expected()`` verdicts, which are built without ``quality/``.

Re-record the fixture (only when a verdict is *meant* to change) with
``python -m tests.unit.test_quality_equivalence``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_qode.quality.gate import FetchedInterview, validate_batch

DATA = Path(__file__).resolve().parents[1] / "data"
EXAMPLES = DATA / "examples"
FIXTURE = DATA / "quality_equivalence.json"
SEED, CASES = 2026, 600

Doc = dict[str, Any]
Mutation = Callable[[Doc, random.Random], None]

_NAN, _INF = float("nan"), math.inf
_NUMBERS = (
    None,
    _NAN,
    _INF,
    -_INF,
    -1,
    -0.5,
    0,
    0.5,
    1,
    2,
    2.5,
    3,
    5,
    50,
    99.99,
    100,
    100.5,
    1e300,
)
_STATUSES = (
    None,
    "REPORT_GENERATED",
    "report_generated",
    " Report_Generated ",
    "INTERVIEW_COMPLETED",
    "INTERVIEW_STARTED",
    "interview_completed",
    "BOGUS",
    "",
)
_TYPES = (
    None,
    "BUSINESS_ANALYST",
    "BUSINESS_ANALYST_MCQ",
    "MULTI_BUSINESS_ANALYST",
    "SOFTWARE_ENGINEER_CODING",
    "SOFTWARE_ENGINEER",
    "TURING_STEM",
    "NOPE",
    "",
)
_VERSIONS = (None, "no_ci_v1", "ci_v2", "pf_domain_v3", "pf_domain_3p_v4", "v9", "")
_RESULTS = (
    None,
    "Pass",
    "Fail",
    "pass",
    "Not enough interviews (minimum 5 required) for this role to evaluate Pass/Fail.",
    "",
)
_TIMES = (
    None,
    "0:00:01",
    "0:00:05.5",
    "0:00:05,5",
    " 0:00:02 ",
    "00:01:00.000",
    "1:2",
    "abc",
    "",
    "100:00:00",
    "0:61:00",
    "\u0661:00:00",
    0,
    1,
    4.5,
    -1,
    _NAN,
    _INF,
    1e6,
)


def _pick(rng: random.Random, values: tuple[Any, ...]) -> Any:
    return values[rng.randrange(len(values))]


def _set(key: str, values: tuple[Any, ...]) -> Mutation:
    def run(doc: Doc, rng: random.Random) -> None:
        doc[key] = _pick(rng, values)

    return run


def _drop(doc: Doc, rng: random.Random) -> None:
    keys = sorted(doc)
    if keys:
        doc.pop(keys[rng.randrange(len(keys))])


def _questions(doc: Doc, rng: random.Random) -> None:
    doc["agent_response_summary"] = _pick(rng, (None, [], [{"agents": None}], [{"agents": []}]))


def _ci(doc: Doc, rng: random.Random) -> None:
    doc["overall_score_ci"] = _pick(
        rng,
        (
            None,
            {},
            {"lower": 40.0},
            {"upper": 60.0},
            {"lower": 40.0, "upper": 60.0},
            {"lower": _NAN, "upper": 90.0},
            {"lower": 10.0, "upper": _NAN},
            {"confidence_level": 0.9},
            {"lower": 60.0, "upper": 40.0, "confidence_level": 1.0},
            {"lower": None, "upper": None, "confidence_level": 0.0},
        ),
    )


def _coverage(doc: Doc, rng: random.Random) -> None:
    doc["total_core_domains"] = _pick(rng, (None, 0, 1, 2, 3, 2.0, 2.5, -1, _NAN, _INF))
    doc["covered_core_domains"] = _pick(rng, (None, 0, 1, 2, 3, 1.0, 0.5, -1, _NAN, _INF))


def _uncovered(doc: Doc, rng: random.Random) -> None:
    core = [
        d.get("name")
        for d in ((doc.get("skills") or {}).get("domains") or [])
        if d.get("type") == "core"
    ]
    doc["uncovered_domains"] = _pick(
        rng,
        (
            None,
            [],
            ["X"],
            ["X", "X"],
            [" "],
            [""],
            [None],
            ["X", " X "],
            core[:1],
            core,
            [*core, "Other"],
        ),
    )


def _periods(doc: Doc, rng: random.Random) -> None:
    periods = []
    for _ in range(rng.randrange(4)):
        start, end = _pick(rng, _TIMES), _pick(rng, _TIMES)
        periods.append(
            {"start": start, "end": end, "duration": _pick(rng, (None, 0, 4, 4.5, _NAN))}
        )
    doc["black_screen_periods"] = periods or _pick(rng, (None, []))


def _duration(doc: Doc, rng: random.Random) -> None:
    doc["duration"] = _pick(rng, (None, -5, 0, 3, 10, 1395, _NAN, _INF))


def _domains(doc: Doc, rng: random.Random) -> None:
    skills = doc.get("skills")
    if not isinstance(skills, dict):
        doc["skills"] = _pick(rng, (None, {}, {"domains": []}, {"domains": None}))
        return
    domains = skills.get("domains") or []
    for d in domains:
        if rng.random() < 0.4:
            d[_pick(rng, ("weight", "score", "ci_lower", "ci_upper"))] = _pick(rng, _NUMBERS)
        if rng.random() < 0.2:
            d["type"] = _pick(rng, (None, "core", "secondary", "optional", "Core"))
        if rng.random() < 0.1:
            d.pop(_pick(rng, ("weight", "ci_lower", "ci_upper", "name")), None)
    if rng.random() < 0.2:
        skills["domains"] = _pick(rng, (None, [], domains[:1]))


def _skills(doc: Doc, rng: random.Random) -> None:
    skills = doc.get("skills")
    if isinstance(skills, dict):
        for s in skills.get("individual_skills") or []:
            if rng.random() < 0.5:
                s[_pick(rng, ("pooled_mean", "ci_lower", "ci_upper"))] = _pick(rng, _NUMBERS)


def _extras(doc: Doc, rng: random.Random) -> None:
    doc["language_proficiency"] = _pick(
        rng, (None, {}, {"english": 80}, {"english": {"fluency": _pick(rng, _NUMBERS)}})
    )
    doc["code_task_result"] = _pick(
        rng,
        (
            None,
            {},
            {"overall_coding_score": _pick(rng, _NUMBERS), "tasks": [{"score": 10}]},
            {"tasks": [{"score": _pick(rng, _NUMBERS)}]},
        ),
    )


def _criterion(doc: Doc, rng: random.Random) -> None:
    for question in doc.get("agent_response_summary") or []:
        for agent in question.get("agents") or []:
            for c in (agent.get("criteria") or {}).values():
                if rng.random() < 0.1:
                    c[_pick(rng, ("score", "weight", "weighted", "maximum_score"))] = _pick(
                        rng, _NUMBERS
                    )
            if rng.random() < 0.05:
                agent[_pick(rng, ("total_weighted_score", "maximum_score"))] = _pick(rng, _NUMBERS)


def _identity(doc: Doc, rng: random.Random) -> None:
    candidate = doc.get("candidate_id")
    doc["interview_id"] = _pick(
        rng, (None, "", "a/b", "x y", "a..b", f"other_{candidate}", "no-candidate-suffix")
    )
    if rng.random() < 0.3:
        doc["candidate_id"] = _pick(rng, (None, "", "someone-else"))


MUTATIONS: tuple[Mutation, ...] = (
    _set("status", _STATUSES),
    _set("status", _STATUSES),
    _set("interview_type", _TYPES),
    _set("assessment_version", _VERSIONS),
    _set("assessment_version", _VERSIONS),
    _set("result", _RESULTS),
    _set("result", _RESULTS),
    _set("aggregated_score", _NUMBERS),
    _set("timestamp", (None, "2025-02-30T00:00:00Z", "2025-11-11T08:04:04Z", "2025-11-11")),
    _questions,
    _ci,
    _ci,
    _coverage,
    _coverage,
    _uncovered,
    _uncovered,
    _periods,
    _periods,
    _duration,
    _domains,
    _skills,
    _extras,
    _extras,
    _criterion,
    _identity,
    _drop,
)


def corpus() -> list[tuple[str | None, bytes]]:
    """(requested id, body) of every mutated example, the same for the same SEED and CASES."""
    bodies = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "verdicts.json")
    valid = [json.loads(p.read_bytes()) for p in bodies if p.name.startswith("valid_")]
    failing = [
        json.loads(p.read_bytes())
        for p in bodies
        if p.name.startswith("fails_QR_") and "PARSE" not in p.name
    ]
    rng = random.Random(SEED)
    items = []
    for _ in range(CASES):
        bases = valid if rng.random() < 0.7 else failing
        doc = copy.deepcopy(bases[rng.randrange(len(bases))])
        requested = doc.get("interview_id")
        for _ in range(_pick(rng, (1, 1, 2, 3))):
            MUTATIONS[rng.randrange(len(MUTATIONS))](doc, rng)
        items.append((requested, json.dumps(doc).encode()))
    return items


def _digest(items: list[tuple[str | None, bytes]]) -> str:
    h = hashlib.sha256()
    for requested, body in items:
        h.update(json.dumps(requested).encode() + b"\0" + body + b"\0")
    return h.hexdigest()


def _verdicts(items: list[tuple[str | None, bytes]]) -> list[list[list[str]]]:
    batch = validate_batch(
        [FetchedInterview(r, b, source=f"case {n}") for n, (r, b) in enumerate(items)]
    )
    return [[list(v.failed_rules), list(v.warnings)] for v in batch.interviews]


def test_mutated_examples_keep_their_recorded_verdicts() -> None:
    recorded = json.loads(FIXTURE.read_text())
    items = corpus()
    assert _digest(items) == recorded["corpus_sha256"], "the corpus changed: re-record on purpose"
    got = _verdicts(items)
    # Recorded before issue #12 made NaN and Infinity QR-PARSE (the lake keeps strict JSON
    # only): those bodies must now get exactly that, every other verdict must stay as recorded.
    expected = [
        want if _strict_json(body) else [["QR-PARSE"], []]
        for want, (_, body) in zip(recorded["verdicts"], items, strict=True)
    ]
    changed = [
        (n, want, have)
        for n, (want, have) in enumerate(zip(expected, got, strict=True))
        if want != have
    ]
    assert not changed, f"{len(changed)} verdicts changed, first: {changed[:5]}"
    assert sum(1 for _, body in items if not _strict_json(body)) < len(items) // 2


def _strict_json(body: bytes) -> bool:
    """False for a body only Python's lenient parser reads (``NaN``, ``Infinity``)."""

    def refuse(constant: str) -> None:
        raise ValueError(constant)

    try:
        json.loads(body, parse_constant=refuse)
    except ValueError:
        return False
    return True


def test_corpus_reaches_every_rule() -> None:
    """The recorded corpus is not trivially green: every rule fires and some cases pass."""
    recorded = json.loads(FIXTURE.read_text())["verdicts"]
    fired = {rule for failed, warned in recorded for rule in (*failed, *warned)}
    from airflow_provider_qode.quality.rules import PARSE_RULE_ID, RULES

    assert fired >= set(RULES) - {PARSE_RULE_ID}
    assert sum(1 for failed, _ in recorded if not failed) >= 20


@pytest.mark.parametrize(("seed", "share"), [(5, 0.5), (23, 0.3)])
def test_generated_payloads_get_the_generators_verdicts(seed: int, share: float) -> None:
    generator = pytest.importorskip("airflow_provider_qode.sandbox.generator")
    dataset = generator.SandboxDataset(seed=seed, count=150, broken_share=share)
    batch = validate_batch([FetchedInterview(i, dataset.body(i)) for i in dataset.ids])
    mismatches = [
        (interview_id, dataset.expected(interview_id).to_dict(), v.reason_texts())
        for interview_id, v in zip(dataset.ids, batch.interviews, strict=True)
        if (list(v.failed_rules), list(v.warnings))
        != (
            dataset.expected(interview_id).failed_rules,
            sorted(dataset.expected(interview_id).warnings),
        )
    ]
    assert not mismatches, mismatches[:3]


def record() -> None:
    """Write the fixture from the gate as it is now."""
    items = corpus()
    lines = ",\n".join(json.dumps(v) for v in _verdicts(items))  # one interview per line
    FIXTURE.write_text(f'{{"corpus_sha256": "{_digest(items)}",\n"verdicts": [\n{lines}\n]}}\n')


if __name__ == "__main__":
    record()
    sys.exit(0)
