"""The GX expectations, one suite per flattened table, each carrying its rule id.

A :class:`Check` names a stock GX expectation by class name with its arguments, the rule it
belongs to, where it applies (:class:`When`, a GX ``row_condition``) and how to phrase a failing
row for a human. Keeping the expectation as data means this module imports no Great Expectations
code: the suites are built at call time, inside the gate's single GX run (importing GX costs
seconds, so nothing imports it at module import), or by ``qode-lake suites export``.

Conditional rules are said the way a GX user says them ("``aggregated_score`` is not null where
``status_normalized == "REPORT_GENERATED"``"). Only what GX has no expectation for is computed in
``flatten.py``: sums and counts over nested rows, residuals compared with a tolerance, and the
checks that reuse this project's parsers (interview id, calendar, whole numbers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_qode.models import (
    BUSINESS_ANALYST_TYPES,
    ISO_DATETIME_REGEX,
    AssessmentVersion,
    InterviewStatus,
    InterviewType,
)
from airflow_provider_qode.quality import flatten as t
from airflow_provider_qode.quality.rules import (
    BLACK_SCREEN_TOLERANCE,
    RULES,
    SCORE_TOLERANCE,
    WEIGHT_SUM_TOLERANCE,
    Severity,
)

Row = Mapping[str, Any]

#: QR-ENUM-04: Pass, Fail or the "not enough interviews" sentence for any whole number N.
RESULT_REGEX = (
    r"^(?:Pass|Fail|Not enough interviews \(minimum \d+ required\) for this role to evaluate "
    r"Pass/Fail\.)\Z"
)
DOMAIN_TYPES = ("core", "secondary", "optional")
REPORT_GENERATED = InterviewStatus.REPORT_GENERATED.value
#: QR-LIFE-06: versions whose generated reports carry ``overall_score_ci``.
VERSIONS_WITH_CI = [
    AssessmentVersion.CI_V2.value,
    AssessmentVersion.PF_DOMAIN_V3.value,
    AssessmentVersion.PF_DOMAIN_3P_V4.value,
]
#: QR-LIFE-05: the interview types that may carry ``language_proficiency``.
BUSINESS_ANALYST = sorted(t.value for t in BUSINESS_ANALYST_TYPES)
# Binary floating point: 0.01 must still pass when computed as 0.010000000000000009.
_EPS = 1e-9


def fmt(value: object) -> str:
    """A value as a reason shows it: JSON-like, whole floats without ``.0``, long text cut."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):
            return "non-finite number"
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    text = json.dumps(str(value), ensure_ascii=False)
    return text if len(text) <= 80 else text[:76] + '..."'


@dataclass(frozen=True)
class When:
    """One term of a GX ``row_condition``: ``column op value``, kept as plain data.

    ``op`` is ``==``, ``>``, ``in`` or ``not_null``. Rows where a term is false, or where its
    column is null (pandas compares NaN and None as false), are outside the expectation.
    """

    column: str
    op: str
    value: Any = None

    def condition(self) -> Any:
        """The GX ``Condition`` object (``Column("status") == "X"`` and the like)."""
        from great_expectations.expectations.row_conditions import Column

        column = Column(self.column)
        if self.op == "==":
            return column == self.value
        if self.op == ">":
            return column > self.value
        if self.op == "in":
            return column.is_in(self.value)
        if self.op == "not_null":
            return column.is_not_null()
        raise ValueError(f"unknown row-condition operator {self.op!r}")


def _generated() -> When:
    """Where QR-LIFE-01 and -06 apply: the status, trimmed and upper-cased, is REPORT_GENERATED."""
    return When("status_normalized", "==", REPORT_GENERATED)


@dataclass(frozen=True)
class Check:
    """One GX expectation over one table, for one rule, on the rows where ``when`` holds."""

    id: str
    rule: str
    table: str
    expectation: str
    kwargs: Mapping[str, Any]
    reason: Callable[[Row], str] = field(compare=False)
    when: tuple[When, ...] = ()

    @property
    def severity(self) -> Severity:
        return RULES[self.rule].severity

    def row_condition(self) -> Any:
        """The GX ``row_condition`` (``None``: every row), the terms joined with AND."""
        if not self.when:
            return None
        conditions = [w.condition() for w in self.when]
        condition = conditions[0]
        for other in conditions[1:]:
            condition = condition & other
        return condition


# --- where a row lives in the payload ----------------------------------------------------------


def _agent(r: Row) -> str:
    return f"agent_response_summary[{r['q']}].agents[{r['a']}]"


def _criterion(r: Row) -> str:
    return f"{_agent(r)}.criteria.{r['key']}"


def _period(r: Row) -> str:
    return f"black_screen_periods[{r['i']}]"


def _domain(r: Row) -> str:
    return f"skills.domains[{r['i']}]"


def _skill(r: Row) -> str:
    return f"skills.individual_skills[{r['i']}]"


def _task(r: Row) -> str:
    return f"code_task_result.tasks[{r['i']}]"


def _uncovered(r: Row) -> str:
    return f"uncovered_domains[{r['i']}]"


# --- expectation helpers -----------------------------------------------------------------------


def _between(
    check_id: str,
    rule: str,
    table: str,
    column: str,
    reason: Callable[[Row], str],
    min_value: float | None = None,
    max_value: float | None = None,
    *,
    strict_min: bool = False,
    strict_max: bool = False,
    when: tuple[When, ...] = (),
) -> Check:
    kwargs: dict[str, Any] = {"column": column}
    if min_value is not None:
        kwargs["min_value"] = min_value
        kwargs["strict_min"] = strict_min
    if max_value is not None:
        kwargs["max_value"] = max_value
        kwargs["strict_max"] = strict_max
    return Check(check_id, rule, table, "ExpectColumnValuesToBeBetween", kwargs, reason, when)


def _range(
    check_id: str, rule: str, table: str, column: str, where: Callable[[Row], str], hi: float
) -> Check:
    """``column`` in [0, hi], with a reason naming the field and its value."""
    return _between(
        check_id,
        rule,
        table,
        column,
        lambda r: f"{where(r) or column} = {fmt(r[column])} is outside [0, {fmt(float(hi))}]",
        0.0,
        hi,
    )


def _is_true(
    check_id: str, rule: str, table: str, column: str, reason: Callable[[Row], str]
) -> Check:
    """A derived boolean that must be true where it is not null."""
    return Check(
        check_id,
        rule,
        table,
        "ExpectColumnValuesToBeInSet",
        {"column": column, "value_set": [True]},
        reason,
    )


def _a_ge_b(
    check_id: str,
    rule: str,
    table: str,
    a: str,
    b: str,
    reason: Callable[[Row], str],
    *,
    or_equal: bool = True,
    when: tuple[When, ...] = (),
) -> Check:
    kwargs = {
        "column_A": a,
        "column_B": b,
        "or_equal": or_equal,
        "ignore_row_if": "either_value_is_missing",
    }
    return Check(
        check_id, rule, table, "ExpectColumnPairValuesAToBeGreaterThanB", kwargs, reason, when
    )


def _equal(
    check_id: str, rule: str, table: str, a: str, b: str, reason: Callable[[Row], str]
) -> Check:
    kwargs = {"column_A": a, "column_B": b, "ignore_row_if": "either_value_is_missing"}
    return Check(check_id, rule, table, "ExpectColumnPairValuesToBeEqual", kwargs, reason)


def _in_set(
    check_id: str,
    rule: str,
    table: str,
    column: str,
    values: list[str],
    reason: Callable[[Row], str],
    when: tuple[When, ...] = (),
) -> Check:
    kwargs = {"column": column, "value_set": values}
    return Check(check_id, rule, table, "ExpectColumnValuesToBeInSet", kwargs, reason, when)


def _not_null(
    check_id: str,
    rule: str,
    table: str,
    column: str,
    reason: Callable[[Row], str],
    when: tuple[When, ...],
) -> Check:
    """``column`` is present on the rows where ``when`` holds."""
    kwargs = {"column": column}
    return Check(check_id, rule, table, "ExpectColumnValuesToNotBeNull", kwargs, reason, when)


def _interval_checks(table: str, where: Callable[[Row], str], point: str) -> list[Check]:
    """QR-SCORE-06 for one level: bounds in [0, 100], ordered, holding their point."""
    lo, hi = "ci_lower", "ci_upper"
    lo_name = "overall_score_ci.lower" if table == t.INTERVIEWS else "ci_lower"
    hi_name = "overall_score_ci.upper" if table == t.INTERVIEWS else "ci_upper"

    def name(r: Row, field_name: str) -> str:
        prefix = where(r)
        return f"{prefix}.{field_name}" if prefix else field_name

    return [
        _between(
            f"{table}.ci_lower_range",
            "QR-SCORE-06",
            table,
            lo,
            lambda r: f"{name(r, lo_name)} = {fmt(r[lo])} is outside [0, 100]",
            0.0,
            100.0,
        ),
        _between(
            f"{table}.ci_upper_range",
            "QR-SCORE-06",
            table,
            hi,
            lambda r: f"{name(r, hi_name)} = {fmt(r[hi])} is outside [0, 100]",
            0.0,
            100.0,
        ),
        _a_ge_b(
            f"{table}.ci_ordered",
            "QR-SCORE-06",
            table,
            hi,
            lo,
            lambda r: f"{name(r, lo_name)} = {fmt(r[lo])} > {name(r, hi_name)} = {fmt(r[hi])}",
        ),
        _a_ge_b(
            f"{table}.ci_holds_lower",
            "QR-SCORE-06",
            table,
            point,
            lo,
            lambda r: f"{name(r, point)} = {fmt(r[point])} < {name(r, lo_name)} = {fmt(r[lo])}",
        ),
        _a_ge_b(
            f"{table}.ci_holds_upper",
            "QR-SCORE-06",
            table,
            hi,
            point,
            lambda r: f"{name(r, point)} = {fmt(r[point])} > {name(r, hi_name)} = {fmt(r[hi])}",
        ),
    ]


def _absent(value: object) -> bool:
    """A null cell: None, or NaN in a float column (a NaN in the payload is stored as +inf)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _top(_: Row) -> str:
    return ""


def _report_has(name: str) -> Check:
    """QR-LIFE-01: one field a generated report must have."""
    return _not_null(
        f"interviews.report_{name}",
        "QR-LIFE-01",
        t.INTERVIEWS,
        name,
        lambda r: f"status = {fmt(r['status'])} but {name} is missing",
        (_generated(),),
    )


def _overall_ci_missing(r: Row) -> str:
    """QR-LIFE-06: which part of ``overall_score_ci`` a generated ci_v2+ report lacks."""
    lower, upper = _absent(r["ci_lower"]), _absent(r["ci_upper"])
    missing = (
        "overall_score_ci"
        if lower and upper
        else "overall_score_ci.lower"
        if lower
        else "overall_score_ci.upper"
    )
    return (
        f"assessment_version = {fmt(r['assessment_version'])} and status = "
        f"{fmt(r['status'])} but {missing} is missing"
    )


def _build_checks() -> list[Check]:
    iv = t.INTERVIEWS
    statuses = [s.value for s in InterviewStatus]
    checks: list[Check] = [
        # --- QR-LIFE-02, -07: identity
        _is_true(
            "interviews.id_format",
            "QR-LIFE-02",
            iv,
            "interview_id_ok",
            lambda r: f"{r['interview_id_problem']} (interview_id = {fmt(r['interview_id'])})",
        ),
        _equal(
            "interviews.id_requested",
            "QR-LIFE-02",
            iv,
            "interview_id",
            "requested_id",
            lambda r: (
                f"interview_id = {fmt(r['interview_id'])} is not the requested id "
                f"{fmt(r['requested_id'])}"
            ),
        ),
        _is_true(
            "interviews.id_candidate",
            "QR-LIFE-07",
            iv,
            "ends_with_candidate_id",
            lambda r: (
                f"interview_id = {fmt(r['interview_id'])} does not end with "
                f"_<candidate_id> (candidate_id = {fmt(r['candidate_id'])})"
            ),
        ),
        # --- QR-ENUM-01..04
        _in_set(
            "interviews.interview_type",
            "QR-ENUM-01",
            iv,
            "interview_type",
            [v.value for v in InterviewType],
            lambda r: f"interview_type = {fmt(r['interview_type'])} is not a known interview type",
        ),
        _in_set(
            "interviews.status",
            "QR-ENUM-02",
            iv,
            "status_normalized",
            statuses,
            lambda r: f"status = {fmt(r['status'])} is not one of {', '.join(statuses)} (any case)",
        ),
        _in_set(
            "interviews.assessment_version",
            "QR-ENUM-03",
            iv,
            "assessment_version",
            [v.value for v in AssessmentVersion],
            lambda r: (
                f"assessment_version = {fmt(r['assessment_version'])} is not one of "
                + " ".join(v.value for v in AssessmentVersion)
            ),
        ),
        Check(
            "interviews.result",
            "QR-ENUM-04",
            iv,
            "ExpectColumnValuesToMatchRegex",
            {"column": "result", "regex": RESULT_REGEX},
            lambda r: (
                f"result = {fmt(r['result'])} is not Pass, Fail or 'Not enough interviews "
                "(minimum N required) for this role to evaluate Pass/Fail.'"
            ),
        ),
        # --- QR-LIFE-03
        Check(
            "interviews.timestamp_format",
            "QR-LIFE-03",
            iv,
            "ExpectColumnValuesToMatchRegex",
            {"column": "timestamp", "regex": ISO_DATETIME_REGEX},
            lambda r: (
                f"timestamp = {fmt(r['timestamp'])} is not an ISO 8601 date-time with a time zone"
            ),
        ),
        _is_true(
            "interviews.timestamp_calendar",
            "QR-LIFE-03",
            iv,
            "timestamp_calendar_ok",
            lambda r: f"timestamp = {fmt(r['timestamp'])} is not a real date and time",
        ),
        # --- QR-SCORE-01, -05, -06, -07 at interview level
        _range("interviews.aggregated_score", "QR-SCORE-01", iv, "aggregated_score", _top, 100.0),
        _between(
            "interviews.overall_coding_score",
            "QR-SCORE-05",
            iv,
            "overall_coding_score",
            lambda r: (
                f"code_task_result.overall_coding_score = {fmt(r['overall_coding_score'])}"
                " is outside [0, 100]"
            ),
            0.0,
            100.0,
        ),
        *_interval_checks(iv, _top, "aggregated_score"),
        _between(
            "interviews.confidence_level",
            "QR-SCORE-07",
            iv,
            "ci_confidence_level",
            lambda r: (
                f"overall_score_ci.confidence_level = {fmt(r['ci_confidence_level'])} is "
                "outside (0, 1)"
            ),
            0.0,
            1.0,
            strict_min=True,
            strict_max=True,
        ),
        _between(
            "interviews.domain_weight_sum",
            "QR-SCORE-07",
            iv,
            "domain_weight_sum",
            lambda r: (
                f"skills.domains[].weight sum to {fmt(round(r['domain_weight_sum'], 6))}, "
                f"not 1 (within {WEIGHT_SUM_TOLERANCE})"
            ),
            1.0 - WEIGHT_SUM_TOLERANCE - _EPS,
            1.0 + WEIGHT_SUM_TOLERANCE + _EPS,
        ),
        # --- QR-COV-01..05
        _between(
            "interviews.total_core_domains_min",
            "QR-COV-01",
            iv,
            "total_core_domains",
            lambda r: f"total_core_domains = {fmt(r['total_core_domains'])} is negative",
            0.0,
        ),
        _between(
            "interviews.covered_core_domains_min",
            "QR-COV-01",
            iv,
            "covered_core_domains",
            lambda r: f"covered_core_domains = {fmt(r['covered_core_domains'])} is negative",
            0.0,
        ),
        _is_true(
            "interviews.total_core_domains_whole",
            "QR-COV-01",
            iv,
            "total_core_domains_whole",
            lambda r: f"total_core_domains = {fmt(r['total_core_domains'])} is not a whole number",
        ),
        _is_true(
            "interviews.covered_core_domains_whole",
            "QR-COV-01",
            iv,
            "covered_core_domains_whole",
            lambda r: (
                f"covered_core_domains = {fmt(r['covered_core_domains'])} is not a whole number"
            ),
        ),
        _a_ge_b(
            "interviews.covered_le_total",
            "QR-COV-01",
            iv,
            "total_core_domains",
            "covered_core_domains",
            lambda r: (
                f"covered_core_domains = {fmt(r['covered_core_domains'])} > "
                f"total_core_domains = {fmt(r['total_core_domains'])}"
            ),
        ),
        _a_ge_b(
            "interviews.uncovered_listed",
            "QR-COV-02",
            iv,
            "uncovered_count",
            "coverage_deficit",
            lambda r: (
                f"uncovered_domains lists {fmt(r['uncovered_count'])} domains, fewer than "
                f"total_core_domains - covered_core_domains = {fmt(r['coverage_deficit'])}"
            ),
            when=(When("coverage_deficit", ">", 0),),
        ),
        _a_ge_b(
            "interviews.pass_needs_coverage",
            "QR-COV-04",
            iv,
            "covered_core_domains",
            "total_core_domains",
            lambda r: (
                f'result = "Pass" but covered_core_domains = '
                f"{fmt(r['covered_core_domains'])} < total_core_domains = "
                f"{fmt(r['total_core_domains'])}"
            ),
            when=(When("result", "==", "Pass"),),
        ),
        _equal(
            "interviews.core_domain_count",
            "QR-COV-05",
            iv,
            "core_domain_count",
            "total_core_domains",
            lambda r: (
                f"skills.domains has {fmt(r['core_domain_count'])} core domains but "
                f"total_core_domains = {fmt(r['total_core_domains'])}"
            ),
        ),
        _equal(
            "interviews.uncovered_core_count",
            "QR-COV-05",
            iv,
            "uncovered_core_count",
            "coverage_deficit",
            lambda r: (
                f"uncovered_domains names {fmt(r['uncovered_core_count'])} core domains but "
                f"total_core_domains - covered_core_domains = {fmt(r['coverage_deficit'])}"
            ),
        ),
        # --- QR-LIFE-01
        _report_has("aggregated_score"),
        _report_has("result"),
        _report_has("assessment_version"),
        _between(
            "interviews.report_questions",
            "QR-LIFE-01",
            iv,
            "question_count",
            lambda r: f"status = {fmt(r['status'])} but agent_response_summary is missing or empty",
            1.0,
            when=(_generated(),),
        ),
        # --- QR-LIFE-04 (interview level)
        _between(
            "interviews.duration",
            "QR-LIFE-04",
            iv,
            "duration",
            lambda r: f"duration = {fmt(r['duration'])} is negative",
            0.0,
        ),
        # --- QR-LIFE-05, -06
        _in_set(
            "interviews.language_proficiency_type",
            "QR-LIFE-05",
            iv,
            "interview_type",
            BUSINESS_ANALYST,
            lambda r: (
                f"language_proficiency is present for interview_type = "
                f"{fmt(r['interview_type'])}, not a business-analyst type"
            ),
            when=(When("has_language_proficiency", "==", True),),
        ),
        _in_set(
            "interviews.code_task_result_type",
            "QR-LIFE-05",
            iv,
            "interview_type",
            [InterviewType.SOFTWARE_ENGINEER_CODING.value],
            lambda r: (
                f"code_task_result is present for interview_type = "
                f"{fmt(r['interview_type'])}, not SOFTWARE_ENGINEER_CODING"
            ),
            when=(When("has_code_task_result", "==", True),),
        ),
        _between(
            "interviews.v1_without_intervals",
            "QR-LIFE-06",
            iv,
            "interval_bound_count",
            lambda r: (
                f'assessment_version = "no_ci_v1" but the report carries '
                f"{fmt(r['interval_bound_count'])} interval bounds"
            ),
            max_value=0.0,
            when=(When("assessment_version", "==", AssessmentVersion.NO_CI_V1.value),),
        ),
        _not_null(
            "interviews.overall_ci_present",
            "QR-LIFE-06",
            iv,
            "ci_lower",
            _overall_ci_missing,
            (When("assessment_version", "in", VERSIONS_WITH_CI), _generated()),
        ),
        _not_null(
            "interviews.overall_ci_upper_present",
            "QR-LIFE-06",
            iv,
            "ci_upper",
            _overall_ci_missing,
            (
                When("assessment_version", "in", VERSIONS_WITH_CI),
                _generated(),
                When("ci_lower", "not_null"),
            ),
        ),
        # --- agents: QR-SCORE-04
        _between(
            "agents.total_min",
            "QR-SCORE-04",
            t.AGENTS,
            "total_weighted_score",
            lambda r: (
                f"{_agent(r)}.total_weighted_score = {fmt(r['total_weighted_score'])} is negative"
            ),
            0.0,
        ),
        _a_ge_b(
            "agents.total_le_maximum",
            "QR-SCORE-04",
            t.AGENTS,
            "maximum_score",
            "total_weighted_score",
            lambda r: (
                f"{_agent(r)}.total_weighted_score = {fmt(r['total_weighted_score'])} > "
                f"maximum_score = {fmt(r['maximum_score'])}"
            ),
        ),
        _between(
            "agents.total_is_sum",
            "QR-SCORE-04",
            t.AGENTS,
            "total_sum_error",
            lambda r: (
                f"{_agent(r)}.total_weighted_score = {fmt(r['total_weighted_score'])} but "
                f"its criteria's weighted sum to {fmt(r['criteria_weighted_sum'])}"
            ),
            max_value=SCORE_TOLERANCE,
        ),
        _between(
            "agents.maximum_is_sum",
            "QR-SCORE-04",
            t.AGENTS,
            "maximum_sum_error",
            lambda r: (
                f"{_agent(r)}.maximum_score = {fmt(r['maximum_score'])} but its "
                f"criteria's maximum_score sum to {fmt(r['criteria_maximum_sum'])}"
            ),
            max_value=SCORE_TOLERANCE,
        ),
        # --- criteria: QR-SCORE-02, -03
        _between(
            "criteria.score_range",
            "QR-SCORE-02",
            t.CRITERIA,
            "score",
            lambda r: f"{_criterion(r)}.score = {fmt(r['score'])} is outside [0, 5]",
            0.0,
            5.0,
        ),
        _between(
            "criteria.weight_positive",
            "QR-SCORE-02",
            t.CRITERIA,
            "weight",
            lambda r: f"{_criterion(r)}.weight = {fmt(r['weight'])} is not > 0",
            0.0,
            strict_min=True,
        ),
        _between(
            "criteria.weighted_product",
            "QR-SCORE-03",
            t.CRITERIA,
            "weighted_error",
            lambda r: (
                f"{_criterion(r)}.weighted = {fmt(r['weighted'])} but score x weight = "
                f"{fmt(r['score'])} x {fmt(r['weight'])}"
            ),
            max_value=SCORE_TOLERANCE,
        ),
        _between(
            "criteria.maximum_product",
            "QR-SCORE-03",
            t.CRITERIA,
            "maximum_error",
            lambda r: (
                f"{_criterion(r)}.maximum_score = {fmt(r['maximum_score'])} but 5 x "
                f"weight = 5 x {fmt(r['weight'])}"
            ),
            max_value=SCORE_TOLERANCE,
        ),
        # --- black-screen periods: QR-LIFE-04
        Check(
            "black_screens.start_readable",
            "QR-LIFE-04",
            t.BLACK_SCREENS,
            "ExpectColumnValuesToMatchRegex",
            {"column": "start_text", "regex": t.CLOCK_REGEX},
            lambda r: f"{_period(r)}.start = {fmt(r['start'])} is not HH:MM:SS.mmm",
        ),
        Check(
            "black_screens.end_readable",
            "QR-LIFE-04",
            t.BLACK_SCREENS,
            "ExpectColumnValuesToMatchRegex",
            {"column": "end_text", "regex": t.CLOCK_REGEX},
            lambda r: f"{_period(r)}.end = {fmt(r['end'])} is not HH:MM:SS.mmm",
        ),
        _between(
            "black_screens.start_min",
            "QR-LIFE-04",
            t.BLACK_SCREENS,
            "start_seconds",
            lambda r: f"{_period(r)}.start = {fmt(r['start'])} is negative",
            0.0,
        ),
        _a_ge_b(
            "black_screens.end_after_start",
            "QR-LIFE-04",
            t.BLACK_SCREENS,
            "end_seconds",
            "start_seconds",
            lambda r: f"{_period(r)}.end = {fmt(r['end'])} is not after start = {fmt(r['start'])}",
            or_equal=False,
        ),
        _a_ge_b(
            "black_screens.end_within_duration",
            "QR-LIFE-04",
            t.BLACK_SCREENS,
            "interview_duration",
            "end_seconds",
            lambda r: (
                f"{_period(r)}.end = {fmt(r['end'])} is after the interview's duration = "
                f"{fmt(r['interview_duration'])} s"
            ),
        ),
        _between(
            "black_screens.duration",
            "QR-LIFE-04",
            t.BLACK_SCREENS,
            "duration_error",
            lambda r: (
                f"{_period(r)}.duration = {fmt(r['duration'])} but end - start = "
                f"{fmt(round(r['end_seconds'] - r['start_seconds'], 3))} s"
            ),
            max_value=BLACK_SCREEN_TOLERANCE + _EPS,
        ),
        # --- domains: QR-ENUM-05, QR-SCORE-05, -06, -07
        _in_set(
            "domains.type",
            "QR-ENUM-05",
            t.DOMAINS,
            "type",
            list(DOMAIN_TYPES),
            lambda r: f"{_domain(r)}.type = {fmt(r['type'])} is not core, secondary or optional",
        ),
        _range(
            "domains.score",
            "QR-SCORE-05",
            t.DOMAINS,
            "score",
            lambda r: f"{_domain(r)}.score",
            100.0,
        ),
        *_interval_checks(t.DOMAINS, _domain, "score"),
        _between(
            "domains.weight",
            "QR-SCORE-07",
            t.DOMAINS,
            "weight",
            lambda r: f"{_domain(r)}.weight = {fmt(r['weight'])} is outside [0, 1]",
            0.0,
            1.0,
        ),
        # --- individual skills: QR-SCORE-05, -06
        _range(
            "skills.pooled_mean",
            "QR-SCORE-05",
            t.SKILLS,
            "pooled_mean",
            lambda r: f"{_skill(r)}.pooled_mean",
            100.0,
        ),
        *_interval_checks(t.SKILLS, _skill, "pooled_mean"),
        # --- language proficiency, code tasks: QR-SCORE-05
        _range(
            "language_proficiency.value",
            "QR-SCORE-05",
            t.LANGUAGE,
            "value",
            lambda r: str(r["path"]),
            100.0,
        ),
        _range(
            "code_tasks.score",
            "QR-SCORE-05",
            t.CODE_TASKS,
            "score",
            lambda r: f"{_task(r)}.score",
            100.0,
        ),
        # --- uncovered domains: QR-COV-03
        Check(
            "uncovered_domains.not_empty",
            "QR-COV-03",
            t.UNCOVERED,
            "ExpectColumnValueLengthsToBeBetween",
            {"column": "name_key", "min_value": 1},
            lambda r: f"{_uncovered(r)} = {fmt(r['name'])} is an empty name",
        ),
        Check(
            "uncovered_domains.unique",
            "QR-COV-03",
            t.UNCOVERED,
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": ["interview", "name_key"]},
            lambda r: f"{_uncovered(r)} = {fmt(r['name'])} is listed more than once",
        ),
    ]
    return checks


#: Every check; ids are unique and every rule of ``rules.RULES`` but QR-PARSE has at least one.
CHECKS: tuple[Check, ...] = tuple(_build_checks())
CHECKS_BY_ID: dict[str, Check] = {c.id: c for c in CHECKS}


def checks_for(table: str) -> list[Check]:
    """The checks of one table, in a stable order."""
    return [c for c in CHECKS if c.table == table]


def build_suite(gx: Any, table: str) -> Any:
    """The ``ExpectationSuite`` of one table; ``gx`` is the imported ``great_expectations``."""
    suite = gx.ExpectationSuite(name=f"qode_{table}")
    for check in checks_for(table):
        expectation_class = getattr(gx.expectations, check.expectation)
        condition = check.row_condition()
        extra = {} if condition is None else {"row_condition": condition}
        suite.add_expectation(
            expectation_class(
                **check.kwargs,
                **extra,
                meta={"rule_id": check.rule, "check_id": check.id},
                description=f"{check.rule}: {RULES[check.rule].description}",
                severity="critical" if check.severity is Severity.ERROR else "warning",
            )
        )
    return suite


def export_suites(directory: str | Path) -> list[Path]:
    """Write each table's suite as GX suite JSON (``qode_<table>.json``) for use in any GX context.

    The files are ``ExpectationSuite.to_json_dict()``; load one with
    ``gx.ExpectationSuite(**json.loads(text))`` and validate the table of the same name that
    ``flatten.flatten()`` builds (see docs/quality.md).
    """
    from airflow_provider_qode.quality.gate import _import_gx, _new_context

    gx = _import_gx()
    _new_context(gx)  # GX builds suites only while a context is active
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in t.TABLES:
        path = out / f"qode_{table}.json"
        suite = build_suite(gx, table).to_json_dict()
        path.write_text(json.dumps(suite, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
