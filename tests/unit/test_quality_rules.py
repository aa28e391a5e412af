"""Every rule of QUALITY_RULES.md, failing and passing, by mutating one valid example.

All cases are validated in ONE ``validate_batch`` call (a module fixture), which is both how the
gate runs in production and what keeps this file fast; each case is still its own test. A case
names the exact error rules and warnings it must produce, so a mutation that trips a second
rule by accident shows up.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_qode.quality.gate import FetchedInterview, InterviewVerdict, validate_batch
from airflow_provider_qode.quality.rules import PARSE_RULE_ID, RULES
from airflow_provider_qode.quality.suite import CHECKS

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
BASE: dict[str, Any] = json.loads((EXAMPLES / "valid_pf_domain_3p_v4.json").read_text())
BASE_ID: str = BASE["interview_id"]

Doc = dict[str, Any]


def _sync_agent(agent: Doc) -> None:
    """Make an agent's totals the sums over its criteria (so only the intended rule breaks)."""
    criteria = agent["criteria"].values()
    agent["total_weighted_score"] = sum(c["weighted"] for c in criteria)
    agent["maximum_score"] = sum(c["maximum_score"] for c in criteria)


def set_criterion(doc: Doc, q: int, a: int, key: str, **values: float) -> None:
    """Set a criterion's score/weight, keep weighted/maximum consistent unless given, re-sum."""
    agent = doc["agent_response_summary"][q]["agents"][a]
    c = agent["criteria"][key]
    c.update({k: v for k, v in values.items() if k in ("score", "weight")})
    c["weighted"] = values.get("weighted", c["score"] * c["weight"])
    c["maximum_score"] = values.get("maximum_score", 5 * c["weight"])
    _sync_agent(agent)


def _rename(doc: Doc, key: str, alias: str) -> None:
    doc[alias] = doc.pop(key)


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Callable[[Doc], Any]
    failed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    reason: str | None = None  # a substring one of the reasons must contain
    requested_id: str | None = BASE_ID

    def body(self) -> bytes:
        doc = copy.deepcopy(BASE)
        self.mutate(doc)
        return json.dumps(doc).encode()


def _all(*steps: Callable[[Doc], Any]) -> Callable[[Doc], None]:
    def run(doc: Doc) -> None:
        for step in steps:
            step(doc)

    return run


def _set(**values: Any) -> Callable[[Doc], None]:
    return lambda doc: doc.update(values)


def _domain(i: int, **values: Any) -> Callable[[Doc], None]:
    return lambda doc: doc["skills"]["domains"][i].update(values)


def _skill(i: int, **values: Any) -> Callable[[Doc], None]:
    return lambda doc: doc["skills"]["individual_skills"][i].update(values)


def _drop(*keys: str) -> Callable[[Doc], None]:
    def run(doc: Doc) -> None:
        for key in keys:
            doc.pop(key)

    return run


def _ci(**values: Any) -> Callable[[Doc], None]:
    return lambda doc: doc["overall_score_ci"].update(values)


def _periods(*periods: Doc, key: str = "black_screen_periods") -> Callable[[Doc], None]:
    """Set the black-screen periods, under an alias when ``key`` is one (canonical removed)."""

    def run(doc: Doc) -> None:
        doc.pop("black_screen_periods")
        doc[key] = list(periods)

    return run


def _agent(q: int, a: int, **values: Any) -> Callable[[Doc], None]:
    return lambda doc: doc["agent_response_summary"][q]["agents"][a].update(values)


def _no_intervals(doc: Doc) -> None:
    doc["overall_score_ci"] = None
    for item in (*doc["skills"]["domains"], *doc["skills"]["individual_skills"]):
        item.pop("ci_lower")
        item.pop("ci_upper")


def _bump_weighted(doc: Doc) -> None:
    agent = doc["agent_response_summary"][0]["agents"][0]
    agent["criteria"]["criterion_0"]["weighted"] += 1
    _sync_agent(agent)


CASES: list[Case] = [
    Case("valid base", lambda doc: None),
    # --- QR-SCORE-01
    Case(
        "SCORE-01 aggregated_score above 100",
        _set(aggregated_score=120),
        ("QR-SCORE-01", "QR-SCORE-06"),
        reason="aggregated_score = 120 is outside [0, 100]",
    ),
    Case(
        "SCORE-01 via alias overall_score",
        _all(_drop("aggregated_score"), _set(overall_score=120)),
        ("QR-SCORE-01", "QR-SCORE-06"),
        reason="aggregated_score = 120",
    ),
    Case(
        "SCORE-01 negative with its interval",
        _all(_set(aggregated_score=-1), _ci(lower=0, upper=1)),
        ("QR-SCORE-01", "QR-SCORE-06"),
    ),
    Case(
        "SCORE-01 NaN is not JSON, so never a score",  # issue #12: strict JSON, QR-PARSE
        _set(aggregated_score=float("nan")),
        ("QR-PARSE",),
        reason="NaN is not a JSON number",
    ),
    Case("SCORE-01 bounds pass", _all(_set(aggregated_score=100), _ci(lower=90, upper=100))),
    Case("SCORE-01 zero passes", _all(_set(aggregated_score=0), _ci(lower=0, upper=3))),
    # --- QR-SCORE-02
    Case(
        "SCORE-02 criterion score above 5",
        lambda d: set_criterion(d, 0, 1, "criterion_0", score=5.5),
        ("QR-SCORE-02",),
        reason="agent_response_summary[0].agents[1].criteria.criterion_0.score = 5.5 is outside "
        "[0, 5]",
    ),
    Case(
        "SCORE-02 negative criterion score",
        lambda d: set_criterion(d, 0, 1, "criterion_2", score=-1),
        ("QR-SCORE-02",),
    ),
    Case(
        "SCORE-02 zero weight",
        lambda d: set_criterion(d, 0, 1, "criterion_2", weight=0),
        ("QR-SCORE-02",),
        reason="criteria.criterion_2.weight = 0 is not > 0",
    ),
    Case("SCORE-02 score 5 passes", lambda d: set_criterion(d, 0, 1, "criterion_2", score=5)),
    # --- QR-SCORE-03
    Case(
        "SCORE-03 weighted is not score x weight",
        _bump_weighted,
        ("QR-SCORE-03",),
        reason="criteria.criterion_0.weighted = 9 but score x weight = 4 x 2",
    ),
    Case(
        "SCORE-03 maximum_score is not 5 x weight",
        lambda d: set_criterion(d, 0, 0, "criterion_0", maximum_score=11),
        ("QR-SCORE-03",),
    ),
    Case(
        "SCORE-03 within 1e-6 passes",
        lambda d: set_criterion(d, 0, 0, "criterion_0", weighted=8 + 1e-7),
    ),
    # --- QR-SCORE-04
    Case(
        "SCORE-04 total is not the criteria sum",
        _agent(0, 0, total_weighted_score=9),
        ("QR-SCORE-04",),
        reason="agent_response_summary[0].agents[0].total_weighted_score = 9 but its criteria",
    ),
    Case(
        "SCORE-04 maximum is not the criteria sum",
        _agent(0, 0, maximum_score=41),
        ("QR-SCORE-04",),
    ),
    Case(
        "SCORE-04 total above maximum without criteria",
        _agent(0, 0, criteria={}, total_weighted_score=20, maximum_score=10),
        ("QR-SCORE-04",),
    ),
    Case(
        "SCORE-04 negative total without criteria",
        _agent(0, 0, criteria={}, total_weighted_score=-1, maximum_score=10),
        ("QR-SCORE-04",),
    ),
    Case(
        "SCORE-04 agent without criteria passes",
        _agent(0, 0, criteria={}, total_weighted_score=5, maximum_score=10),
    ),
    # --- QR-SCORE-05
    Case(
        "SCORE-05 domain score above 100",
        _domain(0, score=101, ci_lower=None, ci_upper=None),
        ("QR-SCORE-05",),
        reason="skills.domains[0].score = 101 is outside [0, 100]",
    ),
    Case(
        "SCORE-05 skill pooled_mean above 100",
        _skill(1, pooled_mean=140, ci_lower=None, ci_upper=None),
        ("QR-SCORE-05",),
    ),
    Case(
        "SCORE-05 language proficiency value",
        _set(
            interview_type="BUSINESS_ANALYST", language_proficiency={"overall": 80, "grammar": 120}
        ),
        ("QR-SCORE-05",),
        reason="language_proficiency.grammar = 120 is outside [0, 100]",
    ),
    Case(
        "SCORE-05 code task score",
        _set(
            interview_type="SOFTWARE_ENGINEER_CODING",
            code_task_result={
                "tasks": [{"task_id": "t1", "score": -5}],
                "overall_coding_score": 50,
            },
        ),
        ("QR-SCORE-05",),
        reason="code_task_result.tasks[0].score = -5",
    ),
    Case(
        "SCORE-05 overall coding score",
        _set(
            interview_type="SOFTWARE_ENGINEER_CODING",
            code_task_result={"overall_coding_score": 100.5},
        ),
        ("QR-SCORE-05",),
    ),
    Case(
        "SCORE-05 language proficiency in range passes",
        _set(
            interview_type="BUSINESS_ANALYST_MCQ",
            language_proficiency={"overall": 80, "fluency": 100},
        ),
    ),
    Case(
        "SCORE-05 code tasks in range pass",
        _set(
            interview_type="SOFTWARE_ENGINEER_CODING",
            code_task_result={"tasks": [{"task_id": 1, "score": 0}], "overall_coding_score": 100},
        ),
    ),
    # --- QR-SCORE-06
    Case(
        "SCORE-06 aggregated below its interval",
        _ci(lower=52, upper=60),
        ("QR-SCORE-06",),
        reason="aggregated_score = 50.99 < overall_score_ci.lower = 52",
    ),
    Case("SCORE-06 interval out of order", _ci(lower=53.51, upper=46.32), ("QR-SCORE-06",)),
    Case(
        "SCORE-06 domain bound above 100",
        _domain(0, ci_upper=101),
        ("QR-SCORE-06",),
        reason="skills.domains[0].ci_upper = 101 is outside [0, 100]",
    ),
    Case(
        "SCORE-06 skill outside its interval",
        _skill(0, ci_lower=70, ci_upper=80),
        ("QR-SCORE-06",),
        reason="skills.individual_skills[0].pooled_mean = 67.6 < "
        "skills.individual_skills[0].ci_lower = 70",
    ),
    Case("SCORE-06 degenerate interval passes", _ci(lower=50.99, upper=50.99)),
    # --- QR-SCORE-07 (warn)
    Case(
        "SCORE-07 confidence level 1",
        _ci(confidence_level=1.0),
        warnings=("QR-SCORE-07",),
        reason="confidence_level = 1 is outside (0, 1)",
    ),
    Case(
        "SCORE-07 domain weights sum to 0.95",
        _domain(0, weight=0.25),
        warnings=("QR-SCORE-07",),
        reason="weight sum to 0.95",
    ),
    Case(
        "SCORE-07 domain weight above 1",
        _all(_domain(0, weight=1.3), _domain(1, weight=-0.04)),
        warnings=("QR-SCORE-07",),
    ),
    Case("SCORE-07 weight sum within 0.01 passes", _domain(0, weight=0.305)),
    # --- QR-ENUM-*
    Case(
        "ENUM-01 unknown interview type",
        _set(interview_type="TURING_ASTROLOGY"),
        ("QR-ENUM-01",),
        reason='interview_type = "TURING_ASTROLOGY"',
    ),
    Case("ENUM-01 create type passes", _set(interview_type="JD_SW_MCP")),
    Case("ENUM-02 unknown status", _set(status="REPORT_PENDING_REVIEW"), ("QR-ENUM-02",)),
    Case("ENUM-02 lower-case status passes", _set(status="report_generated")),
    Case("ENUM-03 unknown version", _set(assessment_version="pf_domain_v9"), ("QR-ENUM-03",)),
    Case("ENUM-03 ci_v2 passes", _set(assessment_version="ci_v2")),
    Case(
        "ENUM-04 result Maybe",
        _set(result="Maybe"),
        ("QR-ENUM-04",),
        reason='result = "Maybe"',
    ),
    Case(
        "ENUM-04 via alias interview_result",
        _all(_drop("result"), _set(interview_result="Maybe")),
        ("QR-ENUM-04",),
    ),
    Case(
        "ENUM-04 sentence without a number",
        _set(
            result="Not enough interviews (minimum ten required) for this role to evaluate "
            "Pass/Fail."
        ),
        ("QR-ENUM-04",),
    ),
    Case("ENUM-04 trailing newline", _set(result="Fail\n"), ("QR-ENUM-04",)),
    Case(
        "ENUM-04 sentence with any N passes",
        _set(
            result="Not enough interviews (minimum 25 required) for this role to evaluate "
            "Pass/Fail."
        ),
    ),
    Case("ENUM-04 Pass passes", _set(result="Pass")),
    Case(
        "ENUM-05 unknown domain type",
        _domain(2, type="mandatory"),
        ("QR-ENUM-05",),
        reason='skills.domains[2].type = "mandatory"',
    ),
    Case("ENUM-05 optional type passes", _domain(2, type="optional")),
    # --- QR-COV-*
    Case(
        "COV-01 no core domains pass",
        _set(total_core_domains=0, covered_core_domains=0, skills=None),
    ),
    Case(
        "COV-01 covered above total",
        _set(covered_core_domains=3),
        ("QR-COV-01",),
        ("QR-COV-05",),
        reason="covered_core_domains = 3 > total_core_domains = 2",
    ),
    Case(
        "COV-01 not whole numbers",
        _set(total_core_domains=2.5, covered_core_domains=2.5),
        ("QR-COV-01",),
        ("QR-COV-05",),
        reason="total_core_domains = 2.5 is not a whole number",
    ),
    Case(
        "COV-02 too few uncovered domains",
        _set(covered_core_domains=0, uncovered_domains=["Data & DB"]),
        ("QR-COV-02",),
        ("QR-COV-05",),
        reason="uncovered_domains lists 1 domains, fewer than",
    ),
    Case(
        "COV-02 enough uncovered domains passes",
        _set(covered_core_domains=1, uncovered_domains=["Data & DB"]),
    ),
    Case(
        "COV-03 duplicate uncovered domain",
        _set(uncovered_domains=["DevOps", "DevOps"]),
        ("QR-COV-03",),
        reason='uncovered_domains[1] = "DevOps" is listed more than once',
    ),
    Case("COV-03 empty name", _set(uncovered_domains=["DevOps", ""]), ("QR-COV-03",)),
    Case("COV-03 blank name", _set(uncovered_domains=["  "]), ("QR-COV-03",)),
    Case("COV-03 null name", _set(uncovered_domains=[None]), ("QR-COV-03",)),
    Case("COV-03 distinct names pass", _set(uncovered_domains=["DevOps", "Cloud"])),
    Case(
        "COV-04 Pass without full coverage",
        _set(result="Pass", covered_core_domains=1, uncovered_domains=["Data & DB"]),
        ("QR-COV-04",),
        reason='result = "Pass" but covered_core_domains = 1 < total_core_domains = 2',
    ),
    Case("COV-04 Pass with full coverage passes", _set(result="Pass")),
    Case(
        "COV-04 Pass without coverage counts passes",
        _set(result="Pass", total_core_domains=None, covered_core_domains=None),
    ),
    Case(
        "COV-05 core domain count differs",
        _domain(2, type="core"),
        warnings=("QR-COV-05",),
        reason="skills.domains has 3 core domains but total_core_domains = 2",
    ),
    Case(
        "COV-05 uncovered core domains differ",
        _set(uncovered_domains=["API Design"]),
        warnings=("QR-COV-05",),
    ),
    Case("COV-05 without skills passes", _set(skills=None)),
    # --- QR-LIFE-01
    Case(
        "LIFE-01 generated report without aggregated_score",
        _drop("aggregated_score"),
        ("QR-LIFE-01",),
        reason="aggregated_score is missing",
    ),
    Case("LIFE-01 without result", _set(result=None), ("QR-LIFE-01",)),
    Case("LIFE-01 without version", _drop("assessment_version"), ("QR-LIFE-01",)),
    Case("LIFE-01 empty assessment", _set(agent_response_summary=[]), ("QR-LIFE-01",)),
    Case(
        "LIFE-01 lower-case status still applies",
        _all(_set(status="report_generated"), _drop("aggregated_score")),
        ("QR-LIFE-01",),
    ),
    Case(
        "LIFE-01 unfinished interview passes",
        _all(_set(status="STARTED", agent_response_summary=None), _drop("aggregated_score")),
    ),
    # the GX row_condition reads the trimmed, upper-cased status; a null status is outside it
    Case(
        "LIFE-01 padded mixed-case status still applies",
        _set(status=" Report_Generated ", result=None),
        ("QR-LIFE-01",),
        reason='status = " Report_Generated " but result is missing',
    ),
    Case("LIFE-01 without status passes", _all(_set(status=None), _drop("aggregated_score"))),
    # --- QR-LIFE-02
    Case(
        "LIFE-02 not the requested id",
        lambda d: None,
        ("QR-LIFE-02",),
        reason="is not the requested id",
        requested_id="other-id",
    ),
    Case(
        "LIFE-02 path characters",
        lambda d: d.update(interview_id="../" + d["interview_id"]),
        ("QR-LIFE-02",),
        requested_id=None,
    ),
    Case(
        "LIFE-02 white space",
        lambda d: d.update(interview_id="x " + d["interview_id"]),
        ("QR-LIFE-02",),
        requested_id=None,
    ),
    Case("LIFE-02 missing id", _drop("interview_id"), ("QR-LIFE-02",), requested_id=None),
    Case("LIFE-02 without a requested id passes", lambda d: None, requested_id=None),
    # --- QR-LIFE-03
    Case(
        "LIFE-03 via alias event_timestamp",
        _all(_drop("timestamp"), _set(event_timestamp="yesterday")),
        ("QR-LIFE-03",),
        reason='timestamp = "yesterday" is not an ISO 8601 date-time',
    ),
    Case("LIFE-03 no time zone", _set(timestamp="2025-11-11T08:04:04"), ("QR-LIFE-03",)),
    Case("LIFE-03 date only", _set(timestamp="2025-11-11"), ("QR-LIFE-03",)),
    Case("LIFE-03 impossible date", _set(timestamp="2025-02-30T08:04:04Z"), ("QR-LIFE-03",)),
    Case("LIFE-03 offset passes", _set(timestamp="2025-11-11T08:04:04.123+05:30")),
    Case("LIFE-03 basic format passes", _set(timestamp="20251111T080404Z")),
    # --- QR-LIFE-04
    Case(
        "LIFE-04 via alias duration_seconds",
        _all(_drop("duration"), _set(duration_seconds=-1)),
        ("QR-LIFE-04",),
        reason="duration = -1 is negative",
    ),
    Case(
        "LIFE-04 via alias black_screens",
        _periods(
            {"start": "00:01:00.000", "end": "00:01:05.000", "duration": 9.0}, key="black_screens"
        ),
        ("QR-LIFE-04",),
        reason="black_screen_periods[0].duration = 9 but end - start = 5 s",
    ),
    Case(
        "LIFE-04 end before start",
        _periods({"start": "00:02:00.000", "end": "00:01:00.000", "duration": -60}),
        ("QR-LIFE-04",),
    ),
    Case(
        "LIFE-04 end after the interview",
        _periods({"start": "00:30:00.000", "end": "00:30:05.000", "duration": 5}),
        ("QR-LIFE-04",),
        reason="is after the interview's duration = 1395 s",
    ),
    Case(
        "LIFE-04 unreadable time",
        _periods({"start": "1 minute", "end": "00:01:05.000", "duration": 5}),
        ("QR-LIFE-04",),
        reason='black_screen_periods[0].start = "1 minute" is not HH:MM:SS.mmm',
    ),
    Case(
        "LIFE-04 unreadable end time",
        _periods({"start": "0:00:01", "end": "0:00:05 s", "duration": 4}),
        ("QR-LIFE-04",),
        reason='black_screen_periods[0].end = "0:00:05 s" is not HH:MM:SS.mmm',
    ),
    Case(
        "LIFE-04 padded times with a decimal comma pass",
        _periods({"start": " 0:00:01 ", "end": "0:00:05,5", "duration": 4.5}),
    ),
    Case(
        "LIFE-04 negative start",
        _periods({"start": -1, "end": 2, "duration": 3}),
        ("QR-LIFE-04",),
    ),
    Case(
        "LIFE-04 numbers and tolerance pass",
        _periods(
            {"start": 10, "end": 12.5, "duration": 2.5},
            {"start": "00:01:00.000", "end": "00:01:05.004", "duration": 5.0},
        ),
    ),
    # --- QR-LIFE-05..07 (warn)
    Case(
        "LIFE-05 language proficiency on a non-BA type",
        _set(language_proficiency={"overall": 80}),
        warnings=("QR-LIFE-05",),
        reason='language_proficiency is present for interview_type = "SOFTWARE_ENGINEER"',
    ),
    Case(
        "LIFE-05 code task result on a non-coding type",
        _set(code_task_result={"tasks": [], "overall_coding_score": 70}),
        warnings=("QR-LIFE-05",),
    ),
    Case(
        "LIFE-05 language proficiency on a business-analyst type passes",
        _set(interview_type="MULTI_BUSINESS_ANALYST", language_proficiency={"overall": 80}),
    ),
    Case(
        "LIFE-05 code task result without interview_type passes",
        _set(interview_type=None, code_task_result={"tasks": [], "overall_coding_score": 70}),
    ),
    Case(
        "LIFE-06 no_ci_v1 with intervals",
        _set(assessment_version="no_ci_v1"),
        warnings=("QR-LIFE-06",),
        reason="no_ci_v1",
    ),
    Case(
        "LIFE-06 generated v4 report without overall_score_ci",
        _set(overall_score_ci=None),
        warnings=("QR-LIFE-06",),
        reason="overall_score_ci is missing",
    ),
    Case(
        "LIFE-06 generated v4 report with only the lower bound",
        _ci(upper=None),
        warnings=("QR-LIFE-06",),
        reason="but overall_score_ci.upper is missing",
    ),
    Case(
        "LIFE-06 NaN upper bound is not JSON, so never a bound",  # issue #12: strict JSON
        _ci(upper=float("nan")),
        ("QR-PARSE",),
        reason="NaN is not a JSON number",
    ),
    Case(
        "LIFE-06 no_ci_v1 without intervals passes",
        _all(_set(assessment_version="no_ci_v1"), _no_intervals),
    ),
    Case(
        "LIFE-06 unfinished v4 interview without interval passes",
        _set(status="INTERVIEW_COMPLETED", overall_score_ci=None),
    ),
    Case(
        "LIFE-07 id does not end with the candidate id",
        _set(candidate_id="2b57b54f-05fa-4c58-a83e-395b8e9a0d48"),
        warnings=("QR-LIFE-07",),
        reason="does not end with _<candidate_id>",
    ),
    Case("LIFE-07 id ending with the candidate id passes", lambda d: None),
]


@pytest.fixture(scope="module")
def verdicts() -> dict[str, InterviewVerdict]:
    items = [FetchedInterview(c.requested_id, c.body(), source=c.name) for c in CASES]
    batch = validate_batch(items)
    return {c.name: v for c, v in zip(CASES, batch.interviews, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case, verdicts: dict[str, InterviewVerdict]) -> None:
    v = verdicts[case.name]
    got = (v.failed_rules, v.warnings)
    assert got == (tuple(sorted(case.failed)), tuple(sorted(case.warnings))), v.reason_texts()
    assert v.verdict == ("quarantined" if case.failed else "published")
    fired = {*case.failed, *case.warnings}
    assert {r.rule_id for r in v.reasons} == fired
    if case.reason:
        assert any(case.reason in r.message for r in v.reasons), v.reason_texts()


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    failing = {rule for c in CASES for rule in (*c.failed, *c.warnings)}
    assert failing >= set(RULES) - {PARSE_RULE_ID}
    prefixes = {c.name.split()[0] for c in CASES if not c.failed and not c.warnings}
    for rule in set(RULES) - {PARSE_RULE_ID}:
        assert rule.removeprefix("QR-") in prefixes, rule


def test_every_rule_has_an_expectation_and_every_expectation_a_rule() -> None:
    assert {c.rule for c in CHECKS} == set(RULES) - {PARSE_RULE_ID}
    assert len({c.id for c in CHECKS}) == len(CHECKS)
