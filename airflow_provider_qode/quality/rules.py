"""The one table of data-quality rules (``QUALITY_RULES.md``): ids, severities, descriptions.

Every report, log line, test and GX expectation (through its ``meta``) names a rule by the id
kept here, so a rule's severity or wording is changed in one place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.StrEnum):
    """``error`` quarantines the interview; ``warn`` lets it through and records the finding."""

    ERROR = "error"
    WARN = "warn"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    description: str


PARSE_RULE_ID = "QR-PARSE"

_E, _W = Severity.ERROR, Severity.WARN

#: Rule id -> rule, in the order of ``QUALITY_RULES.md``.
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            PARSE_RULE_ID,
            _E,
            "the body is a JSON object the interview model can read",
        ),
        Rule("QR-SCORE-01", _E, "aggregated_score is a number in [0, 100]"),
        Rule(
            "QR-SCORE-02",
            _E,
            "every criterion score is in [0, 5] and its weight is > 0",
        ),
        Rule(
            "QR-SCORE-03",
            _E,
            "every criterion has weighted = score x weight and maximum_score = 5 x weight",
        ),
        Rule(
            "QR-SCORE-04",
            _E,
            "every agent has 0 <= total_weighted_score <= maximum_score, both equal to the sums "
            "over its criteria",
        ),
        Rule(
            "QR-SCORE-05",
            _E,
            "every other 0-100 score (domains, skills, language proficiency, code tasks) is in "
            "[0, 100]",
        ),
        Rule(
            "QR-SCORE-06",
            _E,
            "every interval is ordered, holds its point and has bounds in [0, 100]",
        ),
        Rule(
            "QR-SCORE-07",
            _W,
            "overall_score_ci.confidence_level is in (0, 1); domain weights are in [0, 1] and sum "
            "to 1",
        ),
        Rule("QR-ENUM-01", _E, "interview_type is a known interview type"),
        Rule("QR-ENUM-02", _E, "status is a known status (any case)"),
        Rule("QR-ENUM-03", _E, "assessment_version is a known assessment version"),
        Rule(
            "QR-ENUM-04",
            _E,
            "result is Pass, Fail or the 'Not enough interviews (minimum N required)' sentence",
        ),
        Rule("QR-ENUM-05", _E, "skills.domains[].type is core, secondary or optional"),
        Rule(
            "QR-COV-01",
            _E,
            "total_core_domains and covered_core_domains are whole numbers, 0 <= covered <= total",
        ),
        Rule(
            "QR-COV-02",
            _E,
            "when covered < total, uncovered_domains lists at least total - covered domains",
        ),
        Rule("QR-COV-03", _E, "uncovered_domains has no duplicates and no empty names"),
        Rule("QR-COV-04", _E, "result = Pass only when every core domain is covered"),
        Rule(
            "QR-COV-05",
            _W,
            "core domains in skills.domains number total_core_domains; core domains in "
            "uncovered_domains number total - covered",
        ),
        Rule(
            "QR-LIFE-01",
            _E,
            "a generated report has aggregated_score, result, assessment_version and a non-empty "
            "agent_response_summary",
        ),
        Rule(
            "QR-LIFE-02",
            _E,
            "interview_id is a safe non-empty id and equals the id that was asked for",
        ),
        Rule("QR-LIFE-03", _E, "timestamp is an ISO 8601 date-time with a time zone"),
        Rule(
            "QR-LIFE-04",
            _E,
            "duration >= 0; black-screen periods have 0 <= start < end <= duration and "
            "duration = end - start",
        ),
        Rule(
            "QR-LIFE-05",
            _W,
            "language_proficiency only for business-analyst types, code_task_result only for "
            "SOFTWARE_ENGINEER_CODING",
        ),
        Rule(
            "QR-LIFE-06",
            _W,
            "no_ci_v1 reports carry no intervals; ci_v2 and later carry overall_score_ci once "
            "generated",
        ),
        Rule("QR-LIFE-07", _W, "interview_id ends with _<candidate_id>"),
    )
}


def severity_of(rule_id: str) -> Severity:
    """The severity of ``rule_id``; an unknown id is a programming error, so it raises."""
    return RULES[rule_id].severity


#: Tolerances of ``QUALITY_RULES.md``.
SCORE_TOLERANCE = 1e-6
WEIGHT_SUM_TOLERANCE = 0.01
BLACK_SCREEN_TOLERANCE = 0.01
