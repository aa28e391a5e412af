"""Curated rows against the payloads they come from: generated interviews, read as plain JSON.

The expected values are computed here from the JSON document (aliases resolved with
``models.INFERRED_KEYS``), not from the curated code, and compared after a Parquet round trip.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_qode.lake.curated.curator import build_files
from airflow_provider_qode.lake.curated.parquet import parquet_bytes, read_parquet_bytes
from airflow_provider_qode.lake.curated.rows import (
    CurateError,
    RawInterview,
    as_dicts,
    interview_rows,
    sort_key,
    to_table,
)
from airflow_provider_qode.lake.curated.schemas import SCHEMAS, TABLES
from airflow_provider_qode.lake.layout import LakeLayout, interview_date, role_of
from airflow_provider_qode.models import INFERRED_KEYS, parse_interview
from airflow_provider_qode.sandbox.generator import SandboxDataset

LAYOUT = LakeLayout("lake")


def field(doc: dict[str, Any], name: str) -> Any:
    """``doc[name]`` under its canonical name or the first alias present (the model's rule)."""
    for key in (name, *INFERRED_KEYS.get(name, ())):
        if key in doc:
            return doc[key]
    return None


def raw_interview(body: bytes, asset_count: int = 1) -> RawInterview:
    model = parse_interview(body)
    interview_id = model.interview_id or "x"
    dt, role = interview_date(model.timestamp), role_of(model)
    key = LAYOUT.interview_key(LAYOUT.interview_base(interview_id, dt, role))
    return RawInterview(
        interview_id, dt, role, key, hashlib.sha256(body).hexdigest(), model, asset_count
    )


def expected_rows(body: bytes, raw: RawInterview) -> dict[str, list[dict[str, Any]]]:
    doc = json.loads(body)
    head = {"interview_id": raw.interview_id, "role": raw.role}
    trace = {"raw_key": raw.key, "raw_sha256": hashlib.sha256(body).hexdigest()}
    criteria = []
    for qi, question in enumerate(doc.get("agent_response_summary") or []):
        for ai, agent in enumerate(question.get("agents") or []):
            for name, c in (agent.get("criteria") or {}).items():
                criteria.append(
                    {
                        **head,
                        "question_index": qi,
                        "question_text": (question.get("question") or {}).get("text"),
                        "agent_index": ai,
                        "agent_id": agent.get("id"),
                        "agent_name": agent.get("name"),
                        "agent_role": agent.get("role"),
                        "criterion": name,
                        **{k: c.get(k) for k in ("score", "weight", "weighted", "maximum_score")},
                        **trace,
                    }
                )
    skills_doc = field(doc, "skills") or {}
    skills = []
    for i, d in enumerate(skills_doc.get("domains") or []):
        skills.append(
            {
                **head,
                "kind": "domain",
                "position": i,
                "name": d.get("name"),
                "domain": d.get("name"),
                "type": d.get("type"),
                **{k: d.get(k) for k in ("weight", "score", "ci_lower", "ci_upper", "stability")},
                **trace,
            }
        )
    for i, s in enumerate(skills_doc.get("individual_skills") or []):
        skills.append(
            {
                **head,
                "kind": "skill",
                "position": i,
                "name": s.get("skill_name"),
                "domain": s.get("domain"),
                "type": None,
                "weight": None,
                "score": s.get("pooled_mean"),
                "ci_lower": s.get("ci_lower"),
                "ci_upper": s.get("ci_upper"),
                "stability": None,
                **trace,
            }
        )
    ci = field(doc, "overall_score_ci") or {}
    periods = field(doc, "black_screen_periods")
    uncovered = field(doc, "uncovered_domains")
    code = field(doc, "code_task_result")
    questions = doc.get("agent_response_summary")
    interview = {
        **head,
        "role_title": doc.get("role_title"),
        "mapped_role_title": doc.get("mapped_role_title"),
        "candidate_id": doc.get("candidate_id"),
        "session_id": doc.get("session_id"),
        "interview_type": doc.get("interview_type"),
        "sub_interview_type": doc.get("sub_interview_type"),
        "status": field(doc, "status").upper(),
        "result": field(doc, "result"),
        "assessment_version": field(doc, "assessment_version"),
        "aggregated_score": field(doc, "aggregated_score"),
        "score_ci_lower": ci.get("lower"),
        "score_ci_upper": ci.get("upper"),
        "score_ci_confidence_level": ci.get("confidence_level"),
        "duration": field(doc, "duration"),
        "total_core_domains": field(doc, "total_core_domains"),
        "covered_core_domains": field(doc, "covered_core_domains"),
        "uncovered_domain_count": None if uncovered is None else len(uncovered),
        "uncovered_domains": uncovered,
        "question_count": None if questions is None else len(questions),
        "criterion_count": len(criteria),
        "domain_count": None if "domains" not in skills_doc else len(skills_doc["domains"] or []),
        "skill_count": (
            None
            if "individual_skills" not in skills_doc
            else len(skills_doc["individual_skills"] or [])
        ),
        "black_screen_count": None if periods is None else len(periods),
        "black_screen_seconds": (
            None if periods is None else sum(p["duration"] for p in periods if "duration" in p)
        ),
        "overall_coding_score": (code or {}).get("overall_coding_score"),
        "years_of_experience": (doc.get("candidate_profile") or {}).get("year_of_experience"),
        "timestamp": datetime.fromisoformat(field(doc, "timestamp")).astimezone(UTC),
        "asset_count": raw.asset_count,
        **trace,
    }
    return {"interviews": [interview], "criteria": criteria, "skills": skills}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b))
    return bool(a == b)


def assert_rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w)
        for name in w:
            assert _close(g[name], w[name]), (name, g[name], w[name])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    index=st.integers(0, 29),
    questions=st.integers(1, 4),
    agents=st.integers(1, 3),
    criteria=st.integers(1, 4),
    alias_share=st.sampled_from([0.0, 1.0]),
)
def test_curated_rows_equal_the_payloads_fields(
    seed, index, questions, agents, criteria, alias_share
):
    dataset = SandboxDataset(
        seed=seed,
        count=30,
        questions=questions,
        agents=agents,
        criteria=criteria,
        transcript_lines=0,
        alias_share=alias_share,
    )
    body = dataset.body(dataset.ids[index])
    raw = raw_interview(body, asset_count=index % 3)
    want = expected_rows(body, raw)
    files, counts = build_files([raw])
    for table in TABLES:
        read_back = read_parquet_bytes(files[table])
        assert read_back.schema.equals(SCHEMAS[table])
        got = read_back.to_pylist()
        assert counts[table] == len(got)
        assert_rows_equal(got, sorted(want[table], key=_order(table)))


def _order(table: str):
    if table == "criteria":
        return lambda r: (r["interview_id"], r["question_index"], r["agent_index"], r["criterion"])
    if table == "skills":
        return lambda r: (r["interview_id"], r["kind"], r["position"])
    return lambda r: r["interview_id"]


def test_files_are_the_same_bytes_whatever_order_interviews_come_in():
    dataset = SandboxDataset(seed=3, count=25, alias_share=0.5)
    raws = [raw_interview(dataset.body(i)) for i in dataset.ids]
    first, _ = build_files(raws)
    shuffled = list(raws)
    random.Random(1).shuffle(shuffled)
    second, _ = build_files(shuffled)
    assert first == second and set(first) == set(TABLES)
    assert build_files([]) == ({}, {t: 0 for t in TABLES})


def test_an_interview_with_no_criteria_or_skills_still_has_files_in_every_table():
    body = json.dumps(
        {"interview_id": "plain-1", "timestamp": "2025-11-20T10:00:00Z", "status": "started"}
    ).encode()
    files, counts = build_files([raw_interview(body, asset_count=0)])
    assert counts == {"interviews": 1, "criteria": 0, "skills": 0}
    row = read_parquet_bytes(files["interviews"]).to_pylist()[0]
    assert row["status"] == "STARTED" and row["aggregated_score"] is None
    assert read_parquet_bytes(files["criteria"]).num_rows == 0


@pytest.mark.parametrize("value", [2.5, 1e300])
def test_a_count_that_is_no_whole_int32_is_refused_naming_the_raw_key(value):
    body = json.dumps(
        {"interview_id": "odd-1", "timestamp": "2025-11-20T10:00:00Z", "total_core_domains": value}
    ).encode()
    raw = raw_interview(body)
    with pytest.raises(CurateError, match=r"total_core_domains .* odd-1|odd-1.*total_core_domains"):
        interview_rows(raw)


def test_timestamps_are_utc_and_types_are_the_declared_ones():
    body = json.dumps(
        {
            "interview_id": "tz-1",
            "event_timestamp": "2025-11-20T23:30:00-05:00",
            "overall_score": 70,
            "duration_seconds": 1200,
            "total_core_domains": 3.0,
        }
    ).encode()
    raw = raw_interview(body)
    assert raw.dt == "2025-11-21"
    table = read_parquet_bytes(build_files([raw])[0]["interviews"])
    row = table.to_pylist()[0]
    assert row["timestamp"] == datetime(2025, 11, 21, 4, 30, tzinfo=UTC)
    assert row["aggregated_score"] == 70.0 and row["duration"] == 1200.0
    assert row["total_core_domains"] == 3
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("total_core_domains").type == pa.int32()


def test_parquet_files_carry_no_time_or_host_dependent_metadata():
    dataset = SandboxDataset(seed=5, count=3)
    raws = [raw_interview(dataset.body(i)) for i in dataset.ids]
    rows = [r for raw in raws for r in interview_rows(raw)["criteria"]]
    body = parquet_bytes(to_table("criteria", rows))
    meta = pq.ParquetFile(pa.BufferReader(body)).metadata
    assert set(meta.metadata) == {b"ARROW:schema"}
    assert meta.created_by.startswith("parquet-cpp-arrow version")
    assert as_dicts("criteria", sorted(rows, key=sort_key("criteria"))) == (
        read_parquet_bytes(body).to_pylist()
    )
