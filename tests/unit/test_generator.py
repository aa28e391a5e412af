"""The payload generator: deterministic, valid where it says so, broken exactly where it says so.

The checks lean on a small *reference oracle* of QUALITY_RULES.md written here, read literally and
kept independent of ``quality/``; it is first proven against the documented examples and their
verdicts, then used to hold every generated payload to its ``expected()`` verdict.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_qode import models
from airflow_provider_qode.exceptions import QodeResponseError
from airflow_provider_qode.models import InterviewEvent, check_interview_id, parse_interview
from airflow_provider_qode.sandbox import generator
from airflow_provider_qode.sandbox.generator import (
    BREAK_RULES,
    SandboxDataset,
    blob_chunks,
    blob_sha256,
    build_interview,
    make_png,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
CREATE_TYPES = {t.value for t in models.InterviewType}
STATUSES = {s.value for s in models.InterviewStatus}
REQUIRED_BREAKS = {
    *(f"QR-SCORE-0{i}" for i in range(1, 7)),
    *(f"QR-ENUM-0{i}" for i in range(1, 6)),
    *(f"QR-COV-0{i}" for i in range(1, 5)),
    "QR-LIFE-01",
    "QR-LIFE-03",
    "QR-LIFE-04",
    "QR-PARSE",
}
VERSIONS = {"no_ci_v1", "ci_v2", "pf_domain_v3", "pf_domain_3p_v4"}
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

# --- reference oracle ---------------------------------------------------------------------------

_GET_TYPES = {"TURING_STEM", "TURING_NON_STEM", "DOCKER_INTERVIEW", "SOFTWARE_ENGINEER"}
_ALIASES = {
    "duration": ("duration", "duration_seconds", "interview_duration"),
    "black_screen_periods": ("black_screen_periods", "black_screen", "black_screens"),
    "aggregated_score": ("aggregated_score", "overall_score", "interview_score"),
    "result": ("result", "interview_result"),
    "timestamp": ("timestamp", "event_timestamp"),
}
_NOT_ENOUGH = re.compile(
    r"Not enough interviews \(minimum \d+ required\) for this role to evaluate Pass/Fail\."
)


def _get(doc: dict[str, Any], key: str) -> Any:
    for name in _ALIASES.get(key, (key,)):
        if name in doc:
            return doc[name]
    return None


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _secs(v: Any) -> float:
    if _num(v):
        return float(v)
    h, m, s = v.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def check(doc: Any, asked_id: str) -> tuple[set[str], set[str]]:
    """(failed error rules, warnings) of one parsed JSON document."""
    errors: set[str] = set()
    warns: set[str] = set()
    e = errors.add
    agg = _get(doc, "aggregated_score")
    if agg is not None and not (0 <= agg <= 100):
        e("QR-SCORE-01")
    for item in doc.get("agent_response_summary") or []:
        for agent in item.get("agents") or []:
            crits = list((agent.get("criteria") or {}).values())
            for c in crits:
                if not (0 <= c["score"] <= 5) or not c["weight"] > 0:
                    e("QR-SCORE-02")
                if (
                    abs(c["weighted"] - c["score"] * c["weight"]) > 1e-6
                    or abs(c["maximum_score"] - 5 * c["weight"]) > 1e-6
                ):
                    e("QR-SCORE-03")
            tw, mx = agent.get("total_weighted_score"), agent.get("maximum_score")
            if not (0 <= tw <= mx):
                e("QR-SCORE-04")
            if crits and (
                abs(tw - sum(c["weighted"] for c in crits)) > 1e-6
                or abs(mx - sum(c["maximum_score"] for c in crits)) > 1e-6
            ):
                e("QR-SCORE-04")
    skills = doc.get("skills") or {}
    domains = skills.get("domains")
    scores: list[Any] = [d.get("score") for d in domains or []]
    scores += [s.get("pooled_mean") for s in skills.get("individual_skills") or []]
    scores += [v for v in (doc.get("language_proficiency") or {}).values() if _num(v)]
    code = doc.get("code_task_result") or {}
    scores += [t.get("score") for t in code.get("tasks") or []]
    scores.append(code.get("overall_coding_score"))
    if any(s is not None and not 0 <= s <= 100 for s in scores):
        e("QR-SCORE-05")
    ci = doc.get("overall_score_ci")
    intervals: list[tuple[Any, Any, Any]] = []
    if ci:
        intervals.append((ci.get("lower"), agg, ci.get("upper")))
    for d in domains or []:
        intervals.append((d.get("ci_lower"), d.get("score"), d.get("ci_upper")))
    for s in skills.get("individual_skills") or []:
        intervals.append((s.get("ci_lower"), s.get("pooled_mean"), s.get("ci_upper")))
    for lo, point, hi in intervals:
        if lo is None or hi is None:
            continue
        if not (0 <= lo <= hi <= 100) or (point is not None and not lo <= point <= hi):
            e("QR-SCORE-06")
    if ci and ci.get("confidence_level") is not None and not 0 < ci["confidence_level"] < 1:
        warns.add("QR-SCORE-07")
    if domains:
        ws = [d.get("weight") for d in domains]
        if any(not 0 <= w <= 1 for w in ws) or abs(sum(ws) - 1) > 0.01:
            warns.add("QR-SCORE-07")

    itype = doc.get("interview_type")
    if itype is not None and itype not in _GET_TYPES | CREATE_TYPES:
        e("QR-ENUM-01")
    status = doc.get("status")
    if status is not None and status.upper() not in STATUSES:
        e("QR-ENUM-02")
    version = doc.get("assessment_version")
    if version is not None and version not in {
        "no_ci_v1",
        "ci_v2",
        "pf_domain_v3",
        "pf_domain_3p_v4",
    }:
        e("QR-ENUM-03")
    result = _get(doc, "result")
    if result is not None and result not in {"Pass", "Fail"} and not _NOT_ENOUGH.fullmatch(result):
        e("QR-ENUM-04")
    if any(d.get("type") not in {"core", "secondary", "optional"} for d in domains or []):
        e("QR-ENUM-05")

    total, covered = doc.get("total_core_domains"), doc.get("covered_core_domains")
    uncovered = doc.get("uncovered_domains")
    if total is not None and covered is not None:
        if not (
            float(total).is_integer() and float(covered).is_integer() and 0 <= covered <= total
        ):
            e("QR-COV-01")
        if covered < total and len(uncovered or []) < total - covered:
            e("QR-COV-02")
        if result == "Pass" and covered != total:
            e("QR-COV-04")
    if uncovered is not None and (
        len(set(uncovered)) != len(uncovered) or any(not u for u in uncovered)
    ):
        e("QR-COV-03")
    if domains is not None and total is not None:
        core = [d["name"] for d in domains if d.get("type") == "core"]
        named = [u for u in uncovered or [] if u in core]
        if len(core) != total or (covered is not None and len(named) != total - covered):
            warns.add("QR-COV-05")

    generated = isinstance(status, str) and status.upper() == "REPORT_GENERATED"
    if generated and (
        agg is None or result is None or version is None or not doc.get("agent_response_summary")
    ):
        e("QR-LIFE-01")
    iid = doc.get("interview_id")
    if not isinstance(iid, str) or not iid or re.search(r"[/\\\s]|\.\.", iid) or iid != asked_id:
        e("QR-LIFE-02")
    ts = _get(doc, "timestamp")
    if ts is not None:
        try:
            parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
            if parsed.tzinfo is None or "T" not in ts:
                e("QR-LIFE-03")
        except ValueError:
            e("QR-LIFE-03")
    duration = _get(doc, "duration")
    if duration is not None and duration < 0:
        e("QR-LIFE-04")
    for p in _get(doc, "black_screen_periods") or []:
        start, end = _secs(p["start"]), _secs(p["end"])
        if not 0 <= start < end or (duration is not None and end > duration):
            e("QR-LIFE-04")
        if abs(p["duration"] - (end - start)) > 0.01:
            e("QR-LIFE-04")
    ba = {"BUSINESS_ANALYST", "BUSINESS_ANALYST_MCQ", "MULTI_BUSINESS_ANALYST"}
    if doc.get("language_proficiency") is not None and itype not in ba:
        warns.add("QR-LIFE-05")
    if doc.get("code_task_result") is not None and itype != "SOFTWARE_ENGINEER_CODING":
        warns.add("QR-LIFE-05")
    has_interval = bool(ci) or any(
        "ci_lower" in x or "ci_upper" in x
        for x in [*(domains or []), *(skills.get("individual_skills") or [])]
    )
    if version == "no_ci_v1" and has_interval:
        warns.add("QR-LIFE-06")
    if version in VERSIONS - {"no_ci_v1"} and generated and not ci:
        warns.add("QR-LIFE-06")
    cand = doc.get("candidate_id")
    if isinstance(iid, str) and cand and not iid.endswith(f"_{cand}"):
        warns.add("QR-LIFE-07")
    return errors, warns


def verdict(raw: bytes, asked_id: str) -> tuple[list[str], list[str]]:
    """Sorted (errors, warnings) of a raw body; QR-PARSE when the models refuse it."""
    try:
        parse_interview(raw, asked_id)
    except QodeResponseError:
        return ["QR-PARSE"], []
    errors, warns = check(json.loads(raw), asked_id)
    return sorted(errors), sorted(warns)


def _assert_matches(dataset: SandboxDataset) -> None:
    for interview_id in dataset.ids:
        expected = dataset.expected(interview_id)
        errors, warns = verdict(dataset.body(interview_id), interview_id)
        assert (errors, warns) == (expected.failed_rules, sorted(expected.warnings)), (
            interview_id,
            expected,
        )
        assert expected.verdict == ("quarantined" if errors else "published")


@pytest.fixture(scope="module")
def big() -> SandboxDataset:
    """Large enough to hit every breaker, status, version, alias and awkward role."""
    return SandboxDataset(seed=11, count=400, broken_share=0.25)


# --- the oracle is right about the documented examples -------------------------------------------


def test_oracle_agrees_with_documented_verdicts():
    verdicts = json.loads((EXAMPLES / "verdicts.json").read_text())
    for name, want in verdicts.items():
        raw = (EXAMPLES / f"{name}.json").read_bytes()
        try:
            asked = json.loads(raw)["interview_id"]
        except ValueError:
            asked = "any"
        assert verdict(raw, asked) == (want["failed_rules"], want["warnings"]), name


# --- constants mirror the models (the generator avoids importing Airflow) -----------------------


def test_vocabularies_match_models():
    assert set(generator.CREATE_INTERVIEW_TYPES) == {t.value for t in models.CREATE_INTERVIEW_TYPES}
    assert set(generator.STATUSES) == STATUSES
    assert set(generator.VERSIONS) == {v.value for v in models.AssessmentVersion}
    assert set(generator.LANGUAGES) == {lang.value for lang in models.Language}
    assert {t.value for t in models.BUSINESS_ANALYST_TYPES} == generator.BUSINESS_ANALYST_TYPES
    for key, aliases in generator.ALIASES.items():
        assert set(aliases) <= set(models.INFERRED_KEYS[key]), key
    for bad in ("", "a/b", "a..b", "a b", "x" * 300):
        assert generator.interview_id_problem(bad) and models.interview_id_problem(bad)


# --- determinism and ids --------------------------------------------------------------------------


def test_same_seed_same_bytes():
    a = SandboxDataset(seed=3, count=40, broken_share=0.5)
    b = SandboxDataset(seed=3, count=40, broken_share=0.5)
    assert a.ids == b.ids
    for interview_id in a.ids:
        assert a.body(interview_id) == b.body(interview_id)
        assert a.expected(interview_id) == b.expected(interview_id)
        assert a.asset(interview_id) == b.asset(interview_id)
    assert a.events(a.start_date) == b.events(b.start_date)
    assert set(SandboxDataset(seed=4, count=40).ids).isdisjoint(a.ids)


def test_body_is_cached_and_document_matches_body(sandbox_dataset: SandboxDataset):
    for interview_id in sandbox_dataset.ids:
        body = sandbox_dataset.body(interview_id)
        assert sandbox_dataset.body(interview_id) is body
        if not sandbox_dataset.expected(interview_id).breaks or body[:1] == b"{":
            try:
                loaded = json.loads(body)
            except ValueError:
                continue  # truncated JSON: document() is what it was cut from
            assert sandbox_dataset.document(interview_id) == loaded


def test_ids_unique_safe_and_shaped(big: SandboxDataset):
    assert len(set(big.ids)) == len(big.ids) == 400
    for interview_id in big.ids:
        assert check_interview_id(interview_id) == interview_id
        assert re.fullmatch(f"{UUID}_{UUID}", interview_id)
        doc = big.document(interview_id)
        assert interview_id.endswith("_" + doc["candidate_id"])


# --- validity and breaks ------------------------------------------------------------------------


def test_every_payload_gets_exactly_its_expected_verdict(sandbox_dataset, big):
    _assert_matches(sandbox_dataset)
    _assert_matches(big)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    share=st.sampled_from([0.0, 0.3, 1.0]),
    questions=st.integers(1, 3),
    agents=st.integers(1, 3),
    criteria=st.integers(1, 10),
)
def test_expected_verdict_holds_for_any_seed_and_size(seed, share, questions, agents, criteria):
    dataset = SandboxDataset(
        seed=seed,
        count=25,
        broken_share=share,
        questions=questions,
        agents=agents,
        criteria=criteria,
        transcript_lines=3,
    )
    _assert_matches(dataset)


def test_valid_and_non_parse_broken_documents_parse(big: SandboxDataset):
    for interview_id in big.ids:
        expected = big.expected(interview_id)
        if expected.failed_rules == ["QR-PARSE"]:
            with pytest.raises(QodeResponseError):
                parse_interview(big.body(interview_id), interview_id)
        else:
            model = parse_interview(big.body(interview_id), interview_id)
            assert model.status is not None


def test_breaks_cover_every_required_rule_once_each(sandbox_dataset, big):
    assert set(BREAK_RULES) >= REQUIRED_BREAKS
    # The session fixture has exactly one interview per breaker.
    rules = [r for i in sandbox_dataset.ids for r in sandbox_dataset.expected(i).failed_rules]
    assert sorted(rules) == sorted(BREAK_RULES)
    counts = Counter(r for i in big.ids for r in big.expected(i).failed_rules)
    assert set(counts) == set(BREAK_RULES)
    assert sum(counts.values()) == 100  # 400 x 0.25
    for interview_id in big.ids:
        expected = big.expected(interview_id)
        if expected.failed_rules:
            assert len(expected.failed_rules) == 1
            assert expected.verdict == "quarantined"
            assert [b.split(":")[0] for b in expected.breaks] == expected.failed_rules
            assert expected.warnings in ([], ["QR-COV-05"])
        else:
            assert (expected.verdict, expected.warnings, expected.breaks) == ("published", [], [])


def test_parse_breaks_include_html_and_wrong_type(big: SandboxDataset):
    bodies = [big.body(i) for i in big.ids if big.expected(i).failed_rules == ["QR-PARSE"]]
    assert any(b.lstrip().startswith(b"<!DOCTYPE html>") for b in bodies)
    assert any(b'"aggregated_score": "high"' in b for b in bodies)


def test_aliases_are_used_on_valid_interviews(big: SandboxDataset):
    aliased = [i for i in big.ids if big.expected(i).aliases]
    assert len(aliased) >= 20
    seen = set()
    for interview_id in aliased:
        expected = big.expected(interview_id)
        assert expected.verdict == "published"
        ((key, alias),) = expected.aliases.items()
        seen.add(alias)
        doc = json.loads(big.body(interview_id))
        assert alias in doc and key not in doc
        model = parse_interview(big.body(interview_id), interview_id)
        assert model.model_dump(include={key})[key] == doc[alias]
    assert {"overall_score", "event_timestamp"} <= seen


# --- variety ------------------------------------------------------------------------------------


def test_variety_of_types_roles_statuses_versions_and_days(big: SandboxDataset):
    docs = [big.document(i) for i in big.ids if big.body(i)[:1] == b"{"]
    docs = [d for d in docs if isinstance(d.get("aggregated_score", 0), (int, float, type(None)))]
    roles = {d["role_title"] for d in docs}
    assert {"Backend Developer", "C++ Developer", "C Developer", "Data Scientist"} <= roles
    assert {"R&D / Ops Lead", "Ingénieur Données"} <= roles
    assert max(len(r) for r in roles) > 200
    statuses = Counter(d["status"].upper() for d in docs if d["status"].upper() in STATUSES)
    assert statuses.most_common(1)[0][0] == "REPORT_GENERATED"
    assert len(statuses) >= 5
    versions = {d.get("assessment_version") for d in docs}
    assert {"no_ci_v1", "ci_v2", "pf_domain_v3", "pf_domain_3p_v4"} <= versions
    types = {d["interview_type"] for d in docs}
    assert {"SOFTWARE_ENGINEER_CODING", "TURING_STEM"} <= types
    assert types & generator.BUSINESS_ANALYST_TYPES
    for d in docs:
        if d.get("language_proficiency") is not None:
            assert d["interview_type"] in generator.BUSINESS_ANALYST_TYPES
        if d.get("code_task_result") is not None:
            assert d["interview_type"] == "SOFTWARE_ENGINEER_CODING"
        if d.get("identity_screenshot_path"):
            # the asked-for id (a QR-LIFE-02 break changes only the body's interview_id)
            pattern = rf"assets/identity/{UUID}_{d['candidate_id']}\.png"
            assert re.fullmatch(pattern, d["identity_screenshot_path"])
    days = {
        (d.get("timestamp") or d.get("event_timestamp") or "")[:10]
        for d in docs
        if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d.get("timestamp") or "x")
    }
    assert days == {day.isoformat() for day in big.dates()}


def test_valid_numbers_are_exact(big: SandboxDataset):
    for interview_id in big.ids:
        if big.expected(interview_id).breaks:
            continue
        for item in big.document(interview_id).get("agent_response_summary") or []:
            for agent in item["agents"]:
                crits = agent["criteria"].values()
                assert agent["total_weighted_score"] == sum(c["weighted"] for c in crits)
                for c in crits:
                    assert c["weighted"] == c["score"] * c["weight"]
                    assert isinstance(c["score"], int)


def test_created_interviews_are_valid_at_every_status():
    for n, itype in enumerate(sorted(generator.CREATE_INTERVIEW_TYPES)):
        for status in generator.STATUSES:
            interview_id = f"00000000-0000-4000-8000-{n:012d}_c-{n}"
            body = build_interview(
                interview_id=interview_id,
                candidate_id=f"c-{n}",
                email="x@example.com",
                interview_type=itype,
                status=status,
                timestamp=datetime(2025, 11, 11, 8, 4, 4),
                seed=f"t:{n}",
                metadata={"k": "v"},
            )
            assert verdict(body, interview_id) == ([], []), (itype, status)
            assert json.loads(body)["request_metadata"] == {"k": "v"}


# --- assets -------------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload), kind
        chunks.append((kind, payload))
        pos += 12 + length
    assert pos == len(data)
    return chunks


@pytest.mark.parametrize("size", [0, 2048, 300_000])
def test_png_is_valid_and_roughly_the_asked_size(size):
    data = make_png("some-id", size)
    chunks = _png_chunks(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", chunks[0][1][:8])
    idat = b"".join(p for k, p in chunks if k == b"IDAT")
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    extra = [k for k in kinds if k not in (b"IHDR", b"IDAT", b"IEND")]
    assert all(k[0:1].islower() for k in extra)  # ancillary: decoders may skip them
    if size:
        assert abs(len(data) - size) <= 16
    assert make_png("some-id", size) == data != make_png("other-id", size)


def test_dataset_asset_uses_asset_bytes():
    dataset = SandboxDataset(seed=1, count=2, asset_bytes=10_000)
    assert abs(len(dataset.asset(dataset.ids[0])) - 10_000) <= 16


def test_blob_chunks_are_deterministic_and_exact():
    size = 3 * 65536 + 123
    data = b"".join(blob_chunks(size))
    assert len(data) == size
    import hashlib

    assert hashlib.sha256(data).hexdigest() == blob_sha256(size)
    assert b"".join(blob_chunks(0)) == b""


# --- events -------------------------------------------------------------------------------------


def test_events_are_ordered_and_end_terminal(big: SandboxDataset):
    by_interview: dict[str, list[dict[str, Any]]] = {}
    for day in big.dates():
        events = big.events(day)
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps)
        assert all(s.startswith(day.isoformat()) and s.endswith("Z") for s in stamps)
        for event in events:
            InterviewEvent.model_validate(event)
            by_interview.setdefault(event["interviewId"], []).append(event)
    assert big.events(date(2000, 1, 1)) == []
    finished = 0
    for interview_id, events in by_interview.items():
        status = big.expected(interview_id).status.upper()
        last = events[-1]
        assert [e["isTerminal"] for e in events[:-1]] == [False] * (len(events) - 1)
        if status in {"SCHEDULED", "STARTED"}:
            assert not last["isTerminal"]
        elif last["isTerminal"]:
            finished += 1
            assert last["realtimeStatus"] in models.TERMINAL_REALTIME_STATUSES
            doc = big.document(interview_id)
            stamp = doc.get("timestamp") or doc.get("event_timestamp")
            if not big.expected(interview_id).breaks:
                assert last["timestamp"] == stamp
    assert finished > 300
    jsonl = big.events_jsonl(big.dates()[0]).decode().splitlines()
    assert [json.loads(line) for line in jsonl] == big.events(big.dates()[0])


def test_dump_writes_a_replay_directory(tmp_path: Path):
    dataset = SandboxDataset(seed=2, count=5, broken_share=0.4)
    root = dataset.dump(tmp_path / "replay")
    for interview_id in dataset.ids:
        assert (root / f"{interview_id}.json").read_bytes() == dataset.body(interview_id)
        assert (root / "assets" / "identity" / f"{interview_id}.png").is_file()
    expected = json.loads((root / "expected.json").read_text())
    assert expected[dataset.ids[0]] == dataset.expected(dataset.ids[0]).to_dict()
    assert (root / "events" / f"{dataset.start_date.isoformat()}.jsonl").is_file()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        SandboxDataset(broken_share=1.5)
    with pytest.raises(ValueError):
        SandboxDataset(criteria=0)
    with pytest.raises(KeyError):
        SandboxDataset(count=1).body("unknown")
