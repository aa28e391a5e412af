"""Interview models -> one pandas table per nested level, with the derived columns the rules need.

Stock GX expectations look at one or two columns of one row, so what they cannot compute is
done here, once, as derived columns: counts and sums over nested rows (criteria per agent, core
domains, interval bounds), residuals with a tolerance (``|weighted - score x weight|``) and the
few checks that need this project's own parsers. Where a rule applies (``status`` is
``REPORT_GENERATED``, ``result`` is ``Pass``...) is said by the expectation's GX
``row_condition`` (``suite.py``), not here; a column is null when its field is absent, and GX
column-map expectations skip nulls.

Rows are appended to plain column lists and each table becomes one DataFrame at the end: no
per-row Python object survives flattening, and an interview's model can be dropped as soon as it
has been added (the gate parses, adds and forgets one body at a time).

Every table has an ``interview`` column (the position of the interview in the batch) so that a
failing row maps back to its interview.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from airflow_provider_qode.models import (
    ISO_DATETIME,
    Interview,
    interview_id_problem,
    parse_timestamp,
    timestamp_window_problem,
)

INTERVIEWS = "interviews"
AGENTS = "agents"
CRITERIA = "criteria"
BLACK_SCREENS = "black_screens"
DOMAINS = "domains"
SKILLS = "skills"
LANGUAGE = "language_proficiency"
CODE_TASKS = "code_tasks"
UNCOVERED = "uncovered_domains"

#: Every table, in the order the gate validates them.
TABLES: tuple[str, ...] = (
    INTERVIEWS,
    AGENTS,
    CRITERIA,
    BLACK_SCREENS,
    DOMAINS,
    SKILLS,
    LANGUAGE,
    CODE_TASKS,
    UNCOVERED,
)


#: ``HH:MM:SS.mmm`` offset into the recording (QR-LIFE-04); hours may exceed two digits.
CLOCK_REGEX = r"^\d{1,9}:[0-5]?\d:[0-5]?\d(?:[.,]\d+)?\Z"
_CLOCK = re.compile(CLOCK_REGEX)

_INF = math.inf


def _num(value: float | None) -> float | None:
    """A number as a float; NaN becomes +inf and an integer beyond a float ±inf, so ranges
    catch them.

    pandas stores a missing value as NaN, so a real NaN would otherwise look "absent" and pass.
    ``parse_interview`` refuses both already; models built otherwise may still hold them.
    """
    if value is None:
        return None
    try:
        value = float(value)
    except OverflowError:
        return _INF if value > 0 else -_INF
    return _INF if value != value else value


def _seconds(value: str | float | None) -> float | None:
    """Seconds of a black-screen time (``HH:MM:SS.mmm`` or a plain number); None if unreadable.

    Whether a text time is readable is GX's to say (``CLOCK_REGEX`` on ``start_text``).
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not _CLOCK.match(value):
            return None
        hours, minutes, seconds = value.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))
    return _num(value)


def timestamp_is_valid(value: str) -> bool:
    """True when ``value`` is an ISO 8601 date-time with a zone that names a real instant."""
    try:
        parse_timestamp(value)
    except ValueError:
        return False
    return True


def _whole(value: float | None) -> bool | None:
    if value is None:
        return None
    return math.isfinite(value) and float(value).is_integer()


def _display(value: object) -> str | None:
    """Black-screen times keep their wire form for reasons (a string column, not mixed types)."""
    if value is None:
        return None
    return value if isinstance(value, str) else repr(value)


def _numbers_in(value: Any, path: str) -> Iterator[tuple[str, float]]:
    """Every number inside a free object (``language_proficiency``), with its path."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers_in(item, f"{path}[{i}]")


class _Table:
    """Column lists of one table; ``frame()`` turns them into a DataFrame once."""

    def __init__(self, columns: Mapping[str, str]) -> None:
        self.dtypes = dict(columns)
        self.columns: dict[str, list[Any]] = {name: [] for name in columns}

    def frame(self) -> pd.DataFrame:
        data = {
            name: pd.Series(values, dtype=self.dtypes[name], name=name)
            for name, values in self.columns.items()
        }
        return pd.DataFrame(data)


_F, _O, _I, _B = "float64", "object", "int64", "bool"

_SCHEMAS: dict[str, dict[str, str]] = {
    INTERVIEWS: {
        "interview": _I,
        "interview_id": _O,
        "requested_id": _O,
        "candidate_id": _O,
        "interview_id_problem": _O,
        "interview_id_ok": _O,
        "interview_type": _O,
        "status": _O,
        "status_normalized": _O,
        "assessment_version": _O,
        "result": _O,
        "timestamp": _O,
        "timestamp_calendar_ok": _O,
        "aggregated_score": _F,
        "ci_lower": _F,
        "ci_upper": _F,
        "ci_confidence_level": _F,
        "overall_coding_score": _F,
        "domain_weight_sum": _F,
        "total_core_domains": _F,
        "covered_core_domains": _F,
        "total_core_domains_whole": _O,
        "covered_core_domains_whole": _O,
        "uncovered_count": _F,
        "core_domain_count": _F,
        "uncovered_core_count": _F,
        "coverage_deficit": _F,
        "duration": _F,
        "question_count": _I,
        "has_language_proficiency": _B,
        "has_code_task_result": _B,
        "interval_bound_count": _I,
        "ends_with_candidate_id": _O,
    },
    AGENTS: {
        "interview": _I,
        "q": _I,
        "a": _I,
        "total_weighted_score": _F,
        "maximum_score": _F,
        "criteria_weighted_sum": _F,
        "criteria_maximum_sum": _F,
    },
    CRITERIA: {
        "interview": _I,
        "q": _I,
        "a": _I,
        "key": _O,
        "score": _F,
        "weight": _F,
        "weighted": _F,
        "maximum_score": _F,
    },
    BLACK_SCREENS: {
        "interview": _I,
        "i": _I,
        "start": _O,
        "end": _O,
        "start_seconds": _F,
        "end_seconds": _F,
        "start_text": _O,
        "end_text": _O,
        "duration": _F,
        "interview_duration": _F,
    },
    DOMAINS: {
        "interview": _I,
        "i": _I,
        "name": _O,
        "type": _O,
        "weight": _F,
        "score": _F,
        "ci_lower": _F,
        "ci_upper": _F,
    },
    SKILLS: {
        "interview": _I,
        "i": _I,
        "skill_name": _O,
        "pooled_mean": _F,
        "ci_lower": _F,
        "ci_upper": _F,
    },
    LANGUAGE: {"interview": _I, "path": _O, "value": _F},
    CODE_TASKS: {"interview": _I, "i": _I, "score": _F},
    UNCOVERED: {"interview": _I, "i": _I, "name": _O, "name_key": _O},
}


class Flattener:
    """Accumulates interviews into the tables; add each parsed model, then call ``tables()``."""

    def __init__(self) -> None:
        self._tables = {name: _Table(schema) for name, schema in _SCHEMAS.items()}
        self.count = 0
        #: Position -> rule id -> reasons found while flattening, outside GX (see ``_add_enums``).
        self.findings: dict[int, dict[str, list[str]]] = {}

    def add(self, position: int, interview: Interview, requested_id: str | None) -> None:
        """Flatten one interview; ``position`` is its index in the batch.

        All or nothing: if it raises, no row of this interview stays in any table, so the
        caller can record the error against this interview and go on with the batch.
        """
        sizes = {name: len(table.columns["interview"]) for name, table in self._tables.items()}
        try:
            self._add(position, interview, requested_id)
        except BaseException:
            for name, table in self._tables.items():
                for values in table.columns.values():
                    del values[sizes[name] :]
            self.findings.pop(position, None)
            raise
        self.count += 1

    def _add(self, position: int, interview: Interview, requested_id: str | None) -> None:
        row: dict[str, Any] = {"interview": position}
        self._add_identity(row, interview, requested_id)
        self._add_enums(row, interview)
        self._add_window(position, interview)
        self._add_scores(row, interview)
        domain_names = self._add_domains(position, interview, row)
        self._add_coverage(position, interview, row, domain_names)
        self._add_lifecycle(row, interview)
        self._add_black_screens(position, interview)
        self._add_agents(position, interview)
        self._add_extras(position, interview)
        columns = self._tables[INTERVIEWS].columns
        for name, values in columns.items():
            values.append(row.get(name))

    def tables(self) -> dict[str, pd.DataFrame]:
        """One DataFrame per table (columns present even when the table has no rows)."""
        return {name: table.frame() for name, table in self._tables.items()}

    # --- the interviews table ------------------------------------------------------------------

    @staticmethod
    def _add_identity(row: dict[str, Any], iv: Interview, requested_id: str | None) -> None:
        interview_id = iv.interview_id
        problem = (
            "interview_id is missing"
            if interview_id is None
            else interview_id_problem(interview_id)
        )
        row["interview_id"] = interview_id
        row["requested_id"] = requested_id
        row["candidate_id"] = iv.candidate_id
        row["interview_id_problem"] = problem
        row["interview_id_ok"] = problem is None
        if interview_id is not None and iv.candidate_id is not None:
            row["ends_with_candidate_id"] = interview_id.endswith(f"_{iv.candidate_id}")

    @staticmethod
    def _add_enums(row: dict[str, Any], iv: Interview) -> None:
        row["interview_type"] = iv.interview_type
        row["status"] = iv.status
        row["status_normalized"] = iv.status.strip().upper() if iv.status is not None else None
        row["assessment_version"] = iv.assessment_version
        row["result"] = iv.result
        row["timestamp"] = iv.timestamp
        if iv.timestamp is not None and ISO_DATETIME.match(iv.timestamp):
            # The shape is checked by a regex expectation; this catches 2025-02-30 and the like.
            row["timestamp_calendar_ok"] = timestamp_is_valid(iv.timestamp)

    def _add_window(self, position: int, iv: Interview) -> None:
        """QR-LIFE-03 beyond the shape: a real instant outside the sane window of dates."""
        if iv.timestamp is None or not ISO_DATETIME.match(iv.timestamp):
            return
        try:
            problem = timestamp_window_problem(parse_timestamp(iv.timestamp))
        except ValueError:
            return  # not a real date and time: the calendar expectation reports it
        if problem:
            reason = f"timestamp = {iv.timestamp!r} is outside the accepted dates: {problem}"
            self.findings.setdefault(position, {}).setdefault("QR-LIFE-03", []).append(reason)

    @staticmethod
    def _add_scores(row: dict[str, Any], iv: Interview) -> None:
        row["aggregated_score"] = _num(iv.aggregated_score)
        ci = iv.overall_score_ci
        if ci is not None:
            row["ci_lower"] = _num(ci.lower)
            row["ci_upper"] = _num(ci.upper)
            row["ci_confidence_level"] = _num(ci.confidence_level)
        if iv.code_task_result is not None:
            row["overall_coding_score"] = _num(iv.code_task_result.overall_coding_score)
        row["duration"] = _num(iv.duration)

    def _add_domains(self, position: int, iv: Interview, row: dict[str, Any]) -> set[str] | None:
        """Domains and individual skills; returns the core domain names (None: no domains)."""
        skills = iv.skills
        if skills is None:
            return None
        intervals = 0
        core_names: set[str] | None = None
        if skills.domains is not None:
            core_names = set()
            cols = self._tables[DOMAINS].columns
            weight_sum: float | None = 0.0
            for i, d in enumerate(skills.domains):
                cols["interview"].append(position)
                cols["i"].append(i)
                cols["name"].append(d.name)
                cols["type"].append(d.type)
                cols["weight"].append(_num(d.weight))
                cols["score"].append(_num(d.score))
                cols["ci_lower"].append(_num(d.ci_lower))
                cols["ci_upper"].append(_num(d.ci_upper))
                intervals += (d.ci_lower is not None) + (d.ci_upper is not None)
                if d.type == "core" and d.name is not None:
                    core_names.add(d.name)
                weight_sum = (
                    None if weight_sum is None or d.weight is None else weight_sum + d.weight
                )
            row["core_domain_count"] = sum(1 for d in skills.domains if d.type == "core")
            if skills.domains and weight_sum is not None:
                row["domain_weight_sum"] = _num(weight_sum)
        if skills.individual_skills is not None:
            cols = self._tables[SKILLS].columns
            for i, s in enumerate(skills.individual_skills):
                cols["interview"].append(position)
                cols["i"].append(i)
                cols["skill_name"].append(s.skill_name)
                cols["pooled_mean"].append(_num(s.pooled_mean))
                cols["ci_lower"].append(_num(s.ci_lower))
                cols["ci_upper"].append(_num(s.ci_upper))
                intervals += (s.ci_lower is not None) + (s.ci_upper is not None)
        row["_skill_intervals"] = intervals
        return core_names

    def _add_coverage(
        self, position: int, iv: Interview, row: dict[str, Any], core_names: set[str] | None
    ) -> None:
        total = _num(iv.total_core_domains)
        covered = _num(iv.covered_core_domains)
        row["total_core_domains"] = total
        row["covered_core_domains"] = covered
        row["total_core_domains_whole"] = _whole(total)
        row["covered_core_domains_whole"] = _whole(covered)
        deficit = total - covered if total is not None and covered is not None else None
        row["coverage_deficit"] = deficit
        uncovered = iv.uncovered_domains
        if uncovered is not None:
            row["uncovered_count"] = len(uncovered)
            if core_names is not None:
                row["uncovered_core_count"] = len(core_names.intersection(uncovered))
            cols = self._tables[UNCOVERED].columns
            for i, name in enumerate(uncovered):
                cols["interview"].append(position)
                cols["i"].append(i)
                cols["name"].append(name)
                cols["name_key"].append(name.strip() if name is not None else "")

    @staticmethod
    def _add_lifecycle(row: dict[str, Any], iv: Interview) -> None:
        """Facts the lifecycle rules condition on; the conditions themselves are GX's."""
        row["question_count"] = len(iv.agent_response_summary or ())
        row["has_language_proficiency"] = iv.language_proficiency is not None
        row["has_code_task_result"] = iv.code_task_result is not None
        ci = iv.overall_score_ci
        has_overall_ci = ci is not None and (ci.lower is not None or ci.upper is not None)
        row["interval_bound_count"] = int(has_overall_ci) + row.pop("_skill_intervals", 0)

    # --- nested tables -------------------------------------------------------------------------

    def _add_black_screens(self, position: int, iv: Interview) -> None:
        periods = iv.black_screen_periods
        if not periods:
            return
        cols = self._tables[BLACK_SCREENS].columns
        duration = _num(iv.duration)
        for i, p in enumerate(periods):
            start = _seconds(p.start)
            end = _seconds(p.end)
            cols["interview"].append(position)
            cols["i"].append(i)
            cols["start"].append(_display(p.start))
            cols["end"].append(_display(p.end))
            cols["start_seconds"].append(start)
            cols["end_seconds"].append(end)
            cols["start_text"].append(p.start.strip() if isinstance(p.start, str) else None)
            cols["end_text"].append(p.end.strip() if isinstance(p.end, str) else None)
            cols["duration"].append(_num(p.duration))
            cols["interview_duration"].append(duration)

    def _add_agents(self, position: int, iv: Interview) -> None:
        questions = iv.agent_response_summary
        if not questions:
            return
        agents = self._tables[AGENTS].columns
        a_iv, a_q, a_a = agents["interview"], agents["q"], agents["a"]
        a_total, a_max = agents["total_weighted_score"], agents["maximum_score"]
        a_wsum, a_msum = agents["criteria_weighted_sum"], agents["criteria_maximum_sum"]
        crit = self._tables[CRITERIA].columns
        c_iv, c_q, c_a, c_key = crit["interview"], crit["q"], crit["a"], crit["key"]
        c_score, c_weight = crit["score"], crit["weight"]
        c_weighted, c_max = crit["weighted"], crit["maximum_score"]
        for q, question in enumerate(questions):
            if not question.agents:
                continue
            for a, agent in enumerate(question.agents):
                a_iv.append(position)
                a_q.append(q)
                a_a.append(a)
                a_total.append(_num(agent.total_weighted_score))
                a_max.append(_num(agent.maximum_score))
                wsum: float | None = None
                msum: float | None = None
                criteria = agent.criteria
                if criteria:
                    wsum = msum = 0.0
                    for key, c in criteria.items():
                        c_iv.append(position)
                        c_q.append(q)
                        c_a.append(a)
                        c_key.append(key)
                        c_score.append(_num(c.score))
                        c_weight.append(_num(c.weight))
                        weighted = _num(c.weighted)
                        maximum = _num(c.maximum_score)
                        c_weighted.append(weighted)
                        c_max.append(maximum)
                        wsum = None if wsum is None or weighted is None else wsum + weighted
                        msum = None if msum is None or maximum is None else msum + maximum
                a_wsum.append(wsum)
                a_msum.append(msum)

    def _add_extras(self, position: int, iv: Interview) -> None:
        if iv.language_proficiency is not None:
            cols = self._tables[LANGUAGE].columns
            for path, value in _numbers_in(iv.language_proficiency, "language_proficiency"):
                cols["interview"].append(position)
                cols["path"].append(path)
                cols["value"].append(_num(value))
        result = iv.code_task_result
        if result is not None and result.tasks:
            cols = self._tables[CODE_TASKS].columns
            for i, task in enumerate(result.tasks):
                cols["interview"].append(position)
                cols["i"].append(i)
                cols["score"].append(_num(task.score))


def add_derived(tables: dict[str, pd.DataFrame]) -> None:
    """Vectorised derived columns (differences within a row), added in place."""
    crit = tables[CRITERIA]
    crit["weighted_error"] = (crit["weighted"] - crit["score"] * crit["weight"]).abs()
    crit["maximum_error"] = (crit["maximum_score"] - 5.0 * crit["weight"]).abs()
    agents = tables[AGENTS]
    agents["total_sum_error"] = (
        agents["total_weighted_score"] - agents["criteria_weighted_sum"]
    ).abs()
    agents["maximum_sum_error"] = (agents["maximum_score"] - agents["criteria_maximum_sum"]).abs()
    bs = tables[BLACK_SCREENS]
    bs["duration_error"] = (bs["duration"] - (bs["end_seconds"] - bs["start_seconds"])).abs()
    # inf - inf and the like are NaN, which GX would skip as "missing": make them fail.
    for frame, column in (
        (crit, "weighted_error"),
        (crit, "maximum_error"),
        (agents, "total_sum_error"),
        (agents, "maximum_sum_error"),
        (bs, "duration_error"),
    ):
        parts_present = _parts_present(frame, column)
        frame.loc[parts_present & frame[column].isna(), column] = _INF


_ERROR_PARTS: dict[str, tuple[str, ...]] = {
    "weighted_error": ("weighted", "score", "weight"),
    "maximum_error": ("maximum_score", "weight"),
    "total_sum_error": ("total_weighted_score", "criteria_weighted_sum"),
    "maximum_sum_error": ("maximum_score", "criteria_maximum_sum"),
    "duration_error": ("duration", "end_seconds", "start_seconds"),
}


def _parts_present(frame: pd.DataFrame, column: str) -> pd.Series:
    present = pd.Series(True, index=frame.index)
    for part in _ERROR_PARTS[column]:
        present &= frame[part].notna()
    return present


def flatten(items: list[tuple[int, Interview, str | None]]) -> dict[str, pd.DataFrame]:
    """Convenience for tests and tools: flatten ``(position, model, requested_id)`` triples."""
    flattener = Flattener()
    for position, interview, requested_id in items:
        flattener.add(position, interview, requested_id)
    tables = flattener.tables()
    add_derived(tables)
    return tables
