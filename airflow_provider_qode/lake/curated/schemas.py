"""The curated tables' pyarrow schemas, declared once: rows, writer, docs and tests use these.

Column names are the model's canonical names (``models.INFERRED_KEYS`` resolves the aliases,
so ``duration_seconds`` arrives as ``duration``). Types: timestamps are UTC microseconds,
scores and weights float64, counts int32, positions int32, enums plain strings. Every row
carries ``raw_key`` and ``raw_sha256`` (the published ``interview.json`` it came from) and its
partition (``role`` in the file, ``dt`` in the key), so any row traces back to one raw object.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "CRITERIA",
    "DESCRIPTIONS",
    "DT",
    "INTERVIEWS",
    "SCHEMAS",
    "SKILLS",
    "TABLES",
    "TIMESTAMP",
    "with_dt",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")

_TRACE = [
    pa.field("raw_key", pa.string(), nullable=False),
    pa.field("raw_sha256", pa.string(), nullable=False),
]
#: The date partition: in the key (``dt=<YYYY-MM-DD>/``), not in the file, as Hive, Athena,
#: pyarrow datasets and DuckDB's ``hive_partitioning`` expect; readers add it as a column.
DT = pa.field("dt", pa.string(), nullable=False)
_PARTITION = [
    pa.field("interview_id", pa.string(), nullable=False),
    pa.field("role", pa.string(), nullable=False),
]

#: One row per published interview.
INTERVIEWS = pa.schema(
    [
        *_PARTITION,
        pa.field("role_title", pa.string()),
        pa.field("mapped_role_title", pa.string()),
        pa.field("candidate_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("interview_type", pa.string()),
        pa.field("sub_interview_type", pa.string()),
        pa.field("status", pa.string()),
        pa.field("result", pa.string()),
        pa.field("assessment_version", pa.string()),
        pa.field("aggregated_score", pa.float64()),
        pa.field("score_ci_lower", pa.float64()),
        pa.field("score_ci_upper", pa.float64()),
        pa.field("score_ci_confidence_level", pa.float64()),
        pa.field("duration", pa.float64()),
        pa.field("total_core_domains", pa.int32()),
        pa.field("covered_core_domains", pa.int32()),
        pa.field("uncovered_domain_count", pa.int32()),
        pa.field("uncovered_domains", pa.list_(pa.string())),
        pa.field("question_count", pa.int32()),
        pa.field("criterion_count", pa.int32()),
        pa.field("domain_count", pa.int32()),
        pa.field("skill_count", pa.int32()),
        pa.field("black_screen_count", pa.int32()),
        pa.field("black_screen_seconds", pa.float64()),
        pa.field("overall_coding_score", pa.float64()),
        pa.field("years_of_experience", pa.float64()),
        pa.field("timestamp", TIMESTAMP),
        pa.field("asset_count", pa.int32(), nullable=False),
        *_TRACE,
    ]
)

#: One row per question x agent x criterion of ``agent_response_summary``.
CRITERIA = pa.schema(
    [
        *_PARTITION,
        pa.field("question_index", pa.int32(), nullable=False),
        pa.field("question_text", pa.string()),
        pa.field("agent_index", pa.int32(), nullable=False),
        pa.field("agent_id", pa.string()),
        pa.field("agent_name", pa.string()),
        pa.field("agent_role", pa.string()),
        pa.field("criterion", pa.string(), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("weight", pa.float64()),
        pa.field("weighted", pa.float64()),
        pa.field("maximum_score", pa.float64()),
        *_TRACE,
    ]
)

#: One row per ``skills.domains[]`` (kind ``domain``) and ``skills.individual_skills[]``
#: (kind ``skill``); ``score`` is a domain's score or a skill's pooled mean.
SKILLS = pa.schema(
    [
        *_PARTITION,
        pa.field("kind", pa.string(), nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("type", pa.string()),
        pa.field("weight", pa.float64()),
        pa.field("score", pa.float64()),
        pa.field("ci_lower", pa.float64()),
        pa.field("ci_upper", pa.float64()),
        pa.field("stability", pa.float64()),
        *_TRACE,
    ]
)

#: Table name -> schema, in the order tables are written.
SCHEMAS: dict[str, pa.Schema] = {"interviews": INTERVIEWS, "criteria": CRITERIA, "skills": SKILLS}
TABLES: tuple[str, ...] = tuple(SCHEMAS)


def with_dt(schema: pa.Schema) -> pa.Schema:
    """``schema`` as a reader of the partitioned table sees it: the file's columns, then ``dt``."""
    return schema.append(DT)


_COMMON = {
    "interview_id": "the interview's id (its lake key's directory)",
    "role": "role partition of the raw key (`lake/layout.py` encoding)",
    "raw_key": "key of the published `interview.json` this row comes from",
    "raw_sha256": "SHA-256 of that `interview.json`",
    "dt": "date partition (UTC date of `timestamp`), from the key `dt=YYYY-MM-DD/`",
}
#: Table -> column -> what it holds (the docs' tables and the Athena comments come from here;
#: kept out of the files, so rewording a description rewrites no partition).
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "interviews": {
        **_COMMON,
        "role_title": "`role_title` as sent",
        "mapped_role_title": "`mapped_role_title` as sent",
        "candidate_id": "`candidate_id`",
        "session_id": "`session_id`",
        "interview_type": "`interview_type` as sent (e.g. `SOFTWARE_ENGINEER`)",
        "sub_interview_type": "`sub_interview_type`",
        "status": "`status` in upper case when a known status, else as sent",
        "result": "`result` / `interview_result` (`Pass`, `Fail`, ...)",
        "assessment_version": "`assessment_version` (`no_ci_v1`, `ci_v2`, ...)",
        "aggregated_score": "`aggregated_score` / `overall_score` / `interview_score`",
        "score_ci_lower": "`overall_score_ci.lower`",
        "score_ci_upper": "`overall_score_ci.upper`",
        "score_ci_confidence_level": "`overall_score_ci.confidence_level`",
        "duration": "`duration` / `duration_seconds` / `interview_duration`, seconds",
        "total_core_domains": "`total_core_domains`",
        "covered_core_domains": "`covered_core_domains`",
        "uncovered_domain_count": "length of `uncovered_domains`",
        "uncovered_domains": "`uncovered_domains`",
        "question_count": "questions in `agent_response_summary`",
        "criterion_count": "rows of this interview in `criteria`",
        "domain_count": "`skills.domains` (rows of kind `domain` in `skills`)",
        "skill_count": "`skills.individual_skills` (rows of kind `skill` in `skills`)",
        "black_screen_count": "`black_screen_periods` / `black_screen(s)`",
        "black_screen_seconds": "sum of their `duration`",
        "overall_coding_score": "`code_task_result.overall_coding_score`",
        "years_of_experience": "`candidate_profile.year_of_experience`",
        "timestamp": "`timestamp` / `event_timestamp`, in UTC",
        "asset_count": "objects under the interview's `assets/` in the raw partition",
    },
    "criteria": {
        **_COMMON,
        "question_index": "position in `agent_response_summary`",
        "question_text": "`question.text`",
        "agent_index": "position in the question's `agents`",
        "agent_id": "agent `id`",
        "agent_name": "agent `name`",
        "agent_role": "agent `role`",
        "criterion": "the criterion's key in `criteria`",
        "score": "`score` (0-5)",
        "weight": "`weight`",
        "weighted": "`weighted` (score x weight)",
        "maximum_score": "`maximum_score` (5 x weight)",
    },
    "skills": {
        **_COMMON,
        "kind": "`domain` (`skills.domains[]`) or `skill` (`skills.individual_skills[]`)",
        "position": "position in its list",
        "name": "domain `name` or skill `skill_name`",
        "domain": "the domain (a domain's own name; a skill's `domain`)",
        "type": "domain `type` (`core`, `secondary`, `optional`); null for skills",
        "weight": "domain `weight`; null for skills",
        "score": "domain `score` or skill `pooled_mean`",
        "ci_lower": "`ci_lower`",
        "ci_upper": "`ci_upper`",
        "stability": "domain `stability`; null for skills",
    },
}
