"""Typed interview -> rows of the curated tables. Pure functions: no I/O, no clock.

Rows are tuples in their schema's field order (``schemas.py``), cheap to sort and to turn into
columns. :func:`sort_key` orders each table so a partition's files are the same bytes whatever
order the raw objects were listed or read in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from airflow_provider_qode.lake.curated.schemas import SCHEMAS
from airflow_provider_qode.lake.store import LakeError
from airflow_provider_qode.models import Interview, InterviewStatus, parse_timestamp

__all__ = [
    "CurateError",
    "RawInterview",
    "Row",
    "TableRows",
    "as_dicts",
    "interview_rows",
    "sort_key",
    "to_table",
]

Row = tuple[Any, ...]
#: Table name -> rows.
TableRows = dict[str, list[Row]]

_INT32_MAX = 2**31 - 1


class CurateError(LakeError):
    """A published interview the curated tables cannot hold; the message names its raw key."""


@dataclass(frozen=True)
class RawInterview:
    """One published interview as the curated layer sees it: where it lies, and its model."""

    interview_id: str
    dt: str
    role: str
    key: str
    sha256: str
    interview: Interview
    #: Objects under the interview's ``assets/`` in the raw partition.
    asset_count: int = 0


def _count(value: float | None, name: str, raw: RawInterview) -> int | None:
    """A whole number the gate has checked (QR-COV-01) as an int32; refused otherwise."""
    if value is None:
        return None
    if not (math.isfinite(value) and float(value).is_integer() and abs(value) <= _INT32_MAX):
        raise CurateError(f"{raw.key}: {name} = {value!r} is not a whole number of int32 range")
    return int(value)


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _status(value: str | None) -> str | None:
    """The status in its canonical upper case (Qode's own example is lower case)."""
    known = InterviewStatus.parse(value)
    return known.value if known is not None else value


def interview_rows(raw: RawInterview) -> TableRows:
    """The rows of every table for one published interview."""
    model = raw.interview
    head = (raw.interview_id, raw.role)
    trace = (raw.key, raw.sha256)

    criteria: list[Row] = []
    questions = model.agent_response_summary or []
    for q_index, question in enumerate(questions):
        text = question.question.text if question.question is not None else None
        for a_index, agent in enumerate(question.agents or []):
            for name, criterion in (agent.criteria or {}).items():
                criteria.append(
                    (
                        *head,
                        q_index,
                        text,
                        a_index,
                        agent.id,
                        agent.name,
                        agent.role,
                        name,
                        _float(criterion.score),
                        _float(criterion.weight),
                        _float(criterion.weighted),
                        _float(criterion.maximum_score),
                        *trace,
                    )
                )

    skills: list[Row] = []
    domains = (model.skills.domains if model.skills else None) or []
    individual = (model.skills.individual_skills if model.skills else None) or []
    for position, domain in enumerate(domains):
        skills.append(
            (
                *head,
                "domain",
                position,
                domain.name,
                domain.name,
                domain.type,
                _float(domain.weight),
                _float(domain.score),
                _float(domain.ci_lower),
                _float(domain.ci_upper),
                _float(domain.stability),
                *trace,
            )
        )
    for position, skill in enumerate(individual):
        skills.append(
            (
                *head,
                "skill",
                position,
                skill.skill_name,
                skill.domain,
                None,
                None,
                _float(skill.pooled_mean),
                _float(skill.ci_lower),
                _float(skill.ci_upper),
                None,
                *trace,
            )
        )

    ci = model.overall_score_ci
    periods = model.black_screen_periods
    uncovered = model.uncovered_domains
    black_seconds = (
        math.fsum(p.duration for p in periods if p.duration is not None)
        if periods is not None
        else None
    )
    profile = model.candidate_profile
    interview: Row = (
        *head,
        model.role_title,
        model.mapped_role_title,
        model.candidate_id,
        model.session_id,
        model.interview_type,
        model.sub_interview_type,
        _status(model.status),
        model.result,
        model.assessment_version,
        _float(model.aggregated_score),
        _float(ci.lower) if ci else None,
        _float(ci.upper) if ci else None,
        _float(ci.confidence_level) if ci else None,
        _float(model.duration),
        _count(model.total_core_domains, "total_core_domains", raw),
        _count(model.covered_core_domains, "covered_core_domains", raw),
        None if uncovered is None else len(uncovered),
        None if uncovered is None else list(uncovered),
        None if model.agent_response_summary is None else len(questions),
        len(criteria),
        None if model.skills is None or model.skills.domains is None else len(domains),
        None if model.skills is None or model.skills.individual_skills is None else len(individual),
        None if periods is None else len(periods),
        black_seconds,
        _float(model.code_task_result.overall_coding_score) if model.code_task_result else None,
        _float(profile.year_of_experience) if profile else None,
        parse_timestamp(model.timestamp) if model.timestamp is not None else None,
        raw.asset_count,
        *trace,
    )
    return {"interviews": [interview], "criteria": criteria, "skills": skills}


def sort_key(table: str) -> Any:
    """The total order of ``table``'s rows (each table's key columns are unique per row)."""
    if table == "interviews":
        return lambda row: row[0]
    if table == "criteria":  # interview, question, agent, criterion name
        return lambda row: (row[0], row[2], row[4], row[8])
    if table == "skills":  # interview, kind, position
        return lambda row: (row[0], row[2], row[3])
    raise KeyError(table)


def to_table(table: str, rows: Iterable[Row]) -> pa.Table:
    """``rows`` (any order) as a pyarrow table of ``table``'s schema, sorted by :func:`sort_key`."""
    schema = SCHEMAS[table]
    ordered = sorted(rows, key=sort_key(table))
    columns = list(zip(*ordered, strict=True)) if ordered else [() for _ in schema]
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def as_dicts(table: str, rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Rows as ``{column: value}`` (for tests and debugging)."""
    names = SCHEMAS[table].names
    return [dict(zip(names, row, strict=True)) for row in rows]
