"""Deterministic Qode interview payloads for the sandbox server, the tests and the benchmarks.

A :class:`SandboxDataset` is a pure function of its arguments: the same seed gives the same ids,
the same bytes and the same expected verdicts on every machine, so a benchmark or a failing test
can be replayed exactly. Valid documents pass every rule of ``QUALITY_RULES.md`` (errors and
warnings); a chosen share is broken on purpose, each by exactly one *breaker* that fails exactly
one error rule, and :meth:`SandboxDataset.expected` says which rule and which warnings.

Numbers are built so that float arithmetic stays exact: criterion weights are multiples of 0.5
and scores are integers, so ``weighted = score x weight`` and the sums hold bit for bit.

This module deliberately does not import :mod:`airflow_provider_qode.models` (which pulls in
Airflow and costs seconds at start-up); the few enum values it needs are repeated below and a
unit test checks them against the models.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import struct
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

__all__ = [
    "ALIASES",
    "BREAK_RULES",
    "CREATE_INTERVIEW_TYPES",
    "DEFAULT_START_DATE",
    "Expected",
    "PayloadSizes",
    "SandboxDataset",
    "blob_chunks",
    "blob_sha256",
    "build_interview",
    "interview_id_problem",
    "make_png",
]

DEFAULT_START_DATE: Final = date(2025, 11, 10)

#: Get-details-only types; the create types below may appear too.
DETAIL_ONLY_TYPES: Final = ("TURING_STEM", "TURING_NON_STEM")
CREATE_INTERVIEW_TYPES: Final = (
    "STEM",
    "NON_STEM",
    "SOFTWARE_ENGINEER",
    "DOCKER_INTERVIEW",
    "DATA_SCIENTIST",
    "SENIOR_STAFF_ML",
    "RETAIL_OPERATOR",
    "FINANCIAL_EXPERT",
    "MATERIAL_EXPERT",
    "MEDICAL_EXPERT",
    "BUSINESS_ANALYST",
    "MULTI_BUSINESS_ANALYST",
    "BUSINESS_ANALYST_MCQ",
    "SOFTWARE_ENGINEER_CODING",
    "CODE_EVALUATOR",
    "DEVOPS_IAC",
    "JD_CLOUD_ENGINEER",
    "LEGAL_EXPERT",
    "JD_MEDICAL_AI",
    "JD_PHYSICAL_AI",
    "JD_MATH_AI",
    "JD_CHEMISTRY_AI",
    "JD_BIO_AI",
    "JD_SW_MCP",
)
BUSINESS_ANALYST_TYPES: Final = frozenset(
    {"BUSINESS_ANALYST", "BUSINESS_ANALYST_MCQ", "MULTI_BUSINESS_ANALYST"}
)
CODING_TYPE: Final = "SOFTWARE_ENGINEER_CODING"
STATUSES: Final = (
    "SCHEDULED",
    "STARTED",
    "NO_SHOW",
    "CANDIDATE_DROP_OFF",
    "TECHNICAL_GLITCH",
    "INTERVIEW_COMPLETED",
    "REPORT_GENERATED",
    "CANDIDATE_ABORTED",
)
LANGUAGES: Final = (
    "en",
    "zh",
    "es",
    "fr",
    "de",
    "pt",
    "it",
    "nl",
    "ja",
    "ko",
    "da",
    "no",
    "sv",
    "vi",
    "hi",
    "fi",
    "ms",
    "th",
    "ru",
    "id",
)
VERSIONS: Final = ("no_ci_v1", "ci_v2", "pf_domain_v3", "pf_domain_3p_v4")
REPORT_GENERATED: Final = "REPORT_GENERATED"

#: Canonical key -> aliases the contract allows; mirrors ``models.INFERRED_KEYS`` (unit-tested).
ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "duration": ("duration_seconds", "interview_duration"),
    "black_screen_periods": ("black_screen", "black_screens"),
    "aggregated_score": ("overall_score", "interview_score"),
    "result": ("interview_result",),
    "timestamp": ("event_timestamp",),
}
_ALIAS_CHOICES: Final = [(key, alias) for key, aliases in ALIASES.items() for alias in aliases]

NOT_ENOUGH: Final = (
    "Not enough interviews (minimum {n} required) for this role to evaluate Pass/Fail."
)

_BAD_ID = re.compile(r"[/\\\s]|\.\.")


def interview_id_problem(interview_id: str) -> str | None:
    """Why ``interview_id`` may not name a file or URL segment (mirrors ``models``), else None."""
    if not interview_id or len(interview_id) > 256:
        return "interview id is empty or longer than 256 characters"
    if _BAD_ID.search(interview_id) or not interview_id.isprintable():
        return f"interview id {interview_id!r} contains '/', '\\', '..', white space or controls"
    return None


# --- vocabularies ----------------------------------------------------------------------------

_LONG_TITLE: Final = (
    "Principal Distributed Systems & Machine Learning Infrastructure Engineer for Real-Time "
    "Multi-Region Payments, Fraud Detection, Risk Scoring and Regulatory Reporting Platforms "
    "(Remote, EMEA/APAC, 40h/week, Contract-to-Hire)"
)
#: (role_title, mapped_role_title); ordinary titles first, awkward ones after.
_ORDINARY_ROLES: Final = (
    ("Backend Developer", "Backend Engineer"),
    ("C++ Developer", "C++ Developer"),
    ("C Developer", "Embedded C Developer"),
    ("Data Scientist", "ML Engineer"),
    ("Frontend Engineer", "Frontend Developer"),
    ("Project Manager", "Technical Program Manager"),
    ("Subject Matter Expert", "Chemistry SME"),
    ("DevOps Engineer", "Site Reliability Engineer"),
    ("Business Analyst", "Business Analyst"),
    ("Software Engineer", "Software Engineer"),
)
_AWKWARD_ROLES: Final = (
    ("R&D / Ops Lead", "R&D / Ops Lead"),
    ("Ingénieur Données", "Ingénieur Données"),
    (_LONG_TITLE, _LONG_TITLE),
    ("C# / .NET Developer", "C# / .NET Developer"),
    ("データエンジニア", "データエンジニア"),
    ("Data Engineer (ETL) – Contract", None),  # noqa: RUF001 - an en dash on purpose
)
_TYPE_WEIGHTS: Final = {
    "TURING_STEM": 6,
    "TURING_NON_STEM": 5,
    "SOFTWARE_ENGINEER": 6,
    "DOCKER_INTERVIEW": 3,
    "SOFTWARE_ENGINEER_CODING": 4,
    "BUSINESS_ANALYST": 2,
    "BUSINESS_ANALYST_MCQ": 1,
    "MULTI_BUSINESS_ANALYST": 1,
    **{t: 1 for t in CREATE_INTERVIEW_TYPES},
}
_TYPES: Final = list(_TYPE_WEIGHTS)
_TYPE_CUM: Final = [sum(list(_TYPE_WEIGHTS.values())[: i + 1]) for i in range(len(_TYPES))]
_PLAIN_TYPES: Final = [t for t in _TYPES if t not in BUSINESS_ANALYST_TYPES and t != CODING_TYPE]
_FIRST: Final = ("Ana", "Bo", "Chen", "Dmitri", "Zoë", "Fatima", "Gabriel", "Hiro", "Ines", "Jon")
_LAST: Final = ("Silva", "Okafor", "Müller", "Nguyen", "O'Brien", "Kowalski", "Sato", "Haddad")
_DOMAINS: Final = (
    "API Design",
    "Data & DB",
    "System Design",
    "Languages & Frameworks",
    "Performance",
    "Cloud",
    "Security",
    "Testing",
    "DevOps",
    "Machine Learning",
    "Statistics",
    "Stakeholder Management",
    "Algorithms",
    "Communication",
)
_SKILLS: Final = (
    "Kafka",
    "Redis",
    "SQL",
    "REST",
    "gRPC",
    "Python",
    "C++",
    "Rust",
    "Kubernetes",
    "Terraform",
    "PyTorch",
    "Pandas",
    "Excel",
    "Spark",
    "Go",
)
_AGENT_KINDS: Final = (
    ("ai_researcher", "AI researcher"),
    ("domain_expert", "Subject Matter Expert"),
    ("hiring_manager", "Hiring Manager"),
    ("staff_engineer", "Staff Engineer"),
    ("communication_coach", "Communication coach"),
)
_CRITERIA: Final = (
    "technical_depth",
    "problem_solving",
    "communication",
    "system_thinking",
    "trade_offs",
    "code_quality",
    "clarity",
    "evidence_of_impact",
)
_WEIGHTS: Final[tuple[float, ...]] = (0.5, 1, 1.5, 2, 3, 4, 6)
_LINES: Final = (
    "Can you walk me through a system you designed recently?",
    "Sure. We had a queue-based pipeline that processed about two million events a day.",
    'I\'d call it "eventually consistent" rather than strongly consistent.',
    "What trade-offs did you make around retries and idempotency?",
    "We used idempotency keys; retries were exponential with jitter.",
    "Let me think… the bottleneck was the database, not the workers.",
    "Très bien — and how did you monitor it?",
    "Dashboards, alerts on lag, and a weekly review.\nWe also paged on error budgets.",
    "That sounds solid 👍. Next question.",
    "Tab\tseparated thoughts and a backslash \\ for good measure.",
)
_HTML_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)


# --- small helpers ---------------------------------------------------------------------------


def _num(x: float) -> int | float:
    """Integral floats as ints, so payloads read like the documented examples."""
    return int(x) if float(x).is_integer() else x


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


#: Keys that only the report fills: null (in this order) until an interview is assessed.
_REPORT_KEYS = (
    "agent_response_summary",
    "aggregated_score",
    "result",
    "total_core_domains",
    "covered_core_domains",
    "uncovered_domains",
    "language_proficiency",
    "code_task_result",
    "identity_screenshot_path",
    "skills",
    "overall_score_ci",
    "grading_rubric_result",
    "assessment_version",
    "latency_analysis",
)


def _hms(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _pick_type(rng: random.Random) -> str:
    x = rng.random() * _TYPE_CUM[-1]
    for name, cum in zip(_TYPES, _TYPE_CUM, strict=True):
        if x < cum:
            return name
    return _TYPES[-1]


# --- assets ----------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filler(key: bytes, n: int) -> bytes:
    block = hashlib.sha256(key).digest() * 128  # 4 KiB
    reps = n // len(block) + 1
    return (block * reps)[:n]


def make_png(key: str, size: int = 0) -> bytes:
    """A valid 8x8 RGB PNG coloured from ``key``; padded with a private ancillary chunk
    (``qoDe``, which decoders skip) to about ``size`` bytes, so asset tests can ask for big files.
    """
    digest = hashlib.sha256(key.encode()).digest()
    raw = b"".join(b"\x00" + digest[y : y + 3] * 8 for y in range(8))
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
    body = _chunk(b"IDAT", zlib.compress(raw, 9))
    tail = _chunk(b"IEND", b"")
    pad = size - len(head) - len(body) - len(tail) - 12
    if pad > 0:
        body += _chunk(b"qoDe", _filler(digest, pad))
    return head + body + tail


_BLOB_BLOCK: Final = bytes((i * 131 + 7) % 251 for i in range(65536))


def blob_chunks(n_bytes: int, chunk_size: int = 65536) -> Iterator[bytes]:
    """The deterministic content of ``assets/blob/<n>.bin``, generated piecewise (never held)."""
    offset = 0
    while offset < n_bytes:
        size = min(chunk_size, n_bytes - offset, len(_BLOB_BLOCK))
        yield _BLOB_BLOCK[:size]
        offset += size


def blob_sha256(n_bytes: int) -> str:
    """Hex sha256 of :func:`blob_chunks` output, to check a streamed copy without a reference."""
    h = hashlib.sha256()
    for piece in blob_chunks(n_bytes):
        h.update(piece)
    return h.hexdigest()


# --- specs and expected verdicts -------------------------------------------------------------


@dataclass(frozen=True)
class PayloadSizes:
    """How big each generated interview is; the benchmark turns these knobs."""

    questions: int = 5
    agents: int = 3
    criteria: int = 4
    transcript_lines: int = 40
    asset_bytes: int = 2048


@dataclass(frozen=True)
class Expected:
    """What the quality gate must conclude about one generated interview, and why."""

    verdict: str  # "published" or "quarantined"
    failed_rules: list[str]
    warnings: list[str]
    breaks: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by ``/_sandbox/expected``."""
        return {
            "verdict": self.verdict,
            "failed_rules": list(self.failed_rules),
            "warnings": list(self.warnings),
            "breaks": list(self.breaks),
            "aliases": dict(self.aliases),
            "status": self.status,
        }


@dataclass(frozen=True)
class _Spec:
    """Every choice about one interview that is cheap to make (no rendering)."""

    render_key: str
    index: int
    interview_id: str
    candidate_id: str
    session_id: str
    email: str
    fullname: str
    role_title: str
    mapped_role_title: str | None
    interview_type: str
    status: str
    version: str
    timestamp: datetime
    duration: int
    breaker: tuple[str, int] | None = None
    alias: tuple[str, str] | None = None
    metadata: dict[str, Any] | None = None
    extra_key: bool = False
    iframe_url: str = ""


@dataclass
class _Break:
    description: str
    warnings: tuple[str, ...] = ()
    body: bytes | None = None


# --- rendering -------------------------------------------------------------------------------


def _percentages(rng: random.Random, n: int) -> list[float]:
    """``n`` weights in (0, 1) summing to exactly 1 (as whole percentages)."""
    raw = [rng.randint(5, 40) for _ in range(n)]
    total = sum(raw)
    pct = [max(1, r * 100 // total) for r in raw]
    pct[0] += 100 - sum(pct)
    return [p / 100 for p in pct]


def _interval(rng: random.Random, point: float, digits: int) -> tuple[float, float]:
    half_lo, half_hi = rng.uniform(1.5, 6.0), rng.uniform(1.5, 6.0)
    return round(max(0.0, point - half_lo), digits), round(min(100.0, point + half_hi), digits)


def _agent_sums(agent: dict[str, Any]) -> None:
    crits = agent["criteria"].values()
    agent["total_weighted_score"] = _num(sum(c["weighted"] for c in crits))
    agent["maximum_score"] = _num(sum(c["maximum_score"] for c in crits))


def _coverage(doc: dict[str, Any], covered: int) -> None:
    """Set ``covered_core_domains`` and an ``uncovered_domains`` consistent with it (COV-02/05)."""
    domains = (doc.get("skills") or {}).get("domains") or []
    core = [d["name"] for d in domains if d.get("type") == "core"]
    total = doc["total_core_domains"]
    missing = max(0, total - covered)
    names = core[len(core) - missing :] if missing else []
    non_core = [n for n in doc.get("uncovered_domains") or [] if n not in core]
    doc["covered_core_domains"] = covered
    doc["uncovered_domains"] = names + non_core


def _render(spec: _Spec, sizes: PayloadSizes) -> dict[str, Any]:
    """The get-details document of ``spec``: valid against every rule, before any breaker."""
    rng = random.Random(spec.render_key)
    status = spec.status.upper()
    finished = status == REPORT_GENERATED
    attended = status in {
        REPORT_GENERATED,
        "INTERVIEW_COMPLETED",
        "CANDIDATE_DROP_OFF",
        "TECHNICAL_GLITCH",
        "CANDIDATE_ABORTED",
    }
    itype = spec.interview_type
    sub_type = spec.role_title if itype in DETAIL_ONLY_TYPES else None
    doc: dict[str, Any] = {
        "role_title": spec.role_title,
        "mapped_role_title": spec.mapped_role_title if finished else None,
        "candidate_email": spec.email,
        "candidate_id": spec.candidate_id,
        "interview_id": spec.interview_id,
        "iframe_url": spec.iframe_url,
        "interview_type": itype,
        "sub_interview_type": sub_type,
        "request_metadata": spec.metadata,
        "session_id": spec.session_id,
        "candidate_profile": {
            "avatar": (
                f"https://cdn.example.com/avatars/{spec.candidate_id}.png"
                if rng.random() < 0.3
                else None
            ),
            "fullname": spec.fullname,
            "year_of_experience": rng.choice([None, 1, 2, 3.5, 5, 8, 11, 20]),
        },
    }
    if not attended:
        doc.update(dict.fromkeys(("summary", "duration", "black_screen_periods")))
        doc.update(dict.fromkeys(_REPORT_KEYS), status=spec.status, timestamp=_iso(spec.timestamp))
        return doc

    duration = spec.duration
    lines = [
        {
            "speaker_name": "Turing" if i % 2 == 0 else spec.fullname,
            "transcript": _LINES[(i + rng.randrange(len(_LINES))) % len(_LINES)],
        }
        for i in range(sizes.transcript_lines)
    ]
    skills_used = rng.sample(_SKILLS, 4)
    summary: dict[str, Any] = {
        "skill_summaries": [
            {"skill_name": s, "summary": f"Showed working knowledge of {s}."}
            for s in skills_used[:2]
        ],
        "highlights": [{"highlight_name": "Messaging", "description": "Built a queue pipeline."}],
    }
    if rng.random() < 0.6:
        summary["reason_to_hire"] = [
            {"reason_name": "Ownership", "description": "Drove a migration end to end."}
        ]
    summary["areas_of_expertise"] = [{"skill_name": s} for s in skills_used]
    summary["interview_transcript_line"] = lines
    doc["summary"] = summary
    doc["duration"] = duration

    periods = []
    cursor = rng.randint(5_000, 60_000)
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        start = cursor + rng.randint(1_000, 120_000)
        end = start + rng.randint(500, 9_000)
        if end > duration * 1000:
            break
        periods.append({"start": _hms(start), "end": _hms(end), "duration": (end - start) / 1000})
        cursor = end
    doc["black_screen_periods"] = periods

    if not finished:
        doc.update(dict.fromkeys(_REPORT_KEYS), status=spec.status, timestamp=_iso(spec.timestamp))
        doc["identity_screenshot_path"] = f"assets/identity/{spec.interview_id}.png"
        return doc

    with_ci = spec.version != "no_ci_v1"
    kinds = [_AGENT_KINDS[(j + rng.randrange(2)) % len(_AGENT_KINDS)] for j in range(sizes.agents)]
    questions = []
    for q in range(sizes.questions):
        agents = []
        mapping = {}
        for j, (kind, role) in enumerate(kinds):
            agent_id = f"{kind}_{j + 1}"
            criteria: dict[str, Any] = {}
            step6: dict[str, Any] = {"summary": f"Answer {q + 1} assessed by {role}."}
            for c in range(sizes.criteria):
                key = _CRITERIA[c % len(_CRITERIA)] + (f"_{c // len(_CRITERIA)}" if c >= 8 else "")
                score = rng.randint(0, 5)
                weight = rng.choice(_WEIGHTS)
                criteria[key] = {
                    "score": score,
                    "weight": _num(weight),
                    "weighted": _num(score * weight),
                    "maximum_score": _num(5 * weight),
                }
                step6[key] = f"Evidence for {key.replace('_', ' ')}: {score}/5."
            agent: dict[str, Any] = {
                "id": agent_id,
                "name": f"Agent{j}",
                "role": role,
                "total_weighted_score": 0,
                "maximum_score": 0,
                "criteria": criteria,
                "step6_summary": step6,
            }
            _agent_sums(agent)
            agents.append(agent)
            mapping[agent_id] = {"name": f"Agent{j}", "role": role}
        item: dict[str, Any] = {
            "question": {"text": f"Question {q + 1}: tell me about {rng.choice(_SKILLS)}?"},
            "agents": agents,
            "normalization": {} if rng.random() < 0.5 else {"method": "z-score", "scale": 100},
            "mapping": mapping,
        }
        questions.append(item)
    doc["agent_response_summary"] = questions

    agg = round(rng.uniform(15, 95), 2)
    doc["aggregated_score"] = agg

    n_core, n_secondary, n_optional = rng.randint(2, 3), rng.randint(1, 2), rng.randint(0, 2)
    names = rng.sample(_DOMAINS, n_core + n_secondary + n_optional)
    types = ["core"] * n_core + ["secondary"] * n_secondary + ["optional"] * n_optional
    domains = []
    for name, dtype, weight in zip(names, types, _percentages(rng, len(names)), strict=True):
        dscore = round(rng.uniform(20, 97), 1)
        domain: dict[str, Any] = {"name": name, "type": dtype, "weight": weight, "score": dscore}
        domain["stability"] = round(rng.uniform(0.5, 0.99), 2)
        if with_ci:
            domain["ci_lower"], domain["ci_upper"] = _interval(rng, dscore, 1)
        domains.append(domain)
    individual = []
    for s in skills_used[: rng.randint(2, 4)]:
        mean = round(rng.uniform(12, 97), 1)
        skill: dict[str, Any] = {
            "skill_name": s,
            "domain": rng.choice(names),
            "pooled_mean": mean,
        }
        if with_ci:
            skill["ci_lower"], skill["ci_upper"] = _interval(rng, mean, 1)
        individual.append(skill)

    covered = n_core if rng.random() < 0.7 else n_core - rng.randint(1, n_core)
    uncovered = names[covered:n_core]  # the core domains not covered (QR-COV-02, QR-COV-05)
    if rng.random() < 0.25:
        uncovered.append(names[n_core])  # a secondary domain may be listed too
    pass_fail = spec.version in {"pf_domain_v3", "pf_domain_3p_v4"}
    if rng.random() < (0.2 if pass_fail else 0.5):
        result = NOT_ENOUGH.format(n=rng.choice([5, 10, 20]))
    else:
        result = "Pass" if covered == n_core and agg >= 50 else "Fail"
    doc["result"] = result
    doc["total_core_domains"] = n_core
    doc["covered_core_domains"] = covered
    doc["uncovered_domains"] = uncovered
    doc["language_proficiency"] = (
        {
            "overall": round(rng.uniform(40, 98), 1),
            "fluency": round(rng.uniform(40, 100), 1),
            "grammar": round(rng.uniform(40, 100), 1),
            "vocabulary": rng.randint(30, 100),
            "pronunciation": round(rng.uniform(0, 100), 1),
        }
        if itype in BUSINESS_ANALYST_TYPES
        else None
    )
    if itype == CODING_TYPE:
        tasks: list[dict[str, Any]] = [
            {"task_id": f"task-{t + 1}", "title": f"Task {t + 1}", "score": rng.randint(0, 100)}
            for t in range(rng.randint(1, 3))
        ]
        overall = round(sum(t["score"] for t in tasks) / len(tasks), 2)
        doc["code_task_result"] = {"tasks": tasks, "overall_coding_score": overall}
    else:
        doc["code_task_result"] = None
    doc["identity_screenshot_path"] = f"assets/identity/{spec.interview_id}.png"
    doc["skills"] = {"domains": domains, "individual_skills": individual}
    if with_ci:
        lower, upper = _interval(rng, agg, 2)
        doc["overall_score_ci"] = {
            "lower": lower,
            "upper": upper,
            "confidence_level": rng.choice([0.9, 0.95, 0.99]),
            "interpretation": "The true score is likely within this range.",
        }
    else:
        doc["overall_score_ci"] = None
    doc["grading_rubric_result"] = (
        {"rubric_name": "role_rubric", "passed": result == "Pass"} if pass_fail else None
    )
    doc["assessment_version"] = spec.version
    doc["latency_analysis"] = {
        "mean_response_latency_seconds": round(rng.uniform(0.8, 6.0), 2),
        "p95_response_latency_seconds": round(rng.uniform(6.0, 15.0), 2),
    }
    doc["status"] = spec.status
    doc["timestamp"] = _iso(spec.timestamp)
    if spec.extra_key:
        doc["proctoring_flags"] = {"tab_switches": rng.randint(0, 3), "multiple_faces": False}
    return doc


# --- breakers: each fails exactly one error rule -----------------------------------------------


def _agents(doc: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    for qi, item in enumerate(doc["agent_response_summary"]):
        for agent in item["agents"]:
            yield qi, agent


def _score_01(doc: dict[str, Any], variant: int) -> _Break:
    value = [100.5, -3.25, 250][variant % 3]
    doc["aggregated_score"] = value
    return _Break(f"aggregated_score = {value} (outside [0, 100])")


def _score_02(doc: dict[str, Any], variant: int) -> _Break:
    if variant % 2 == 0:
        for qi, agent in _agents(doc):
            for key, c in agent["criteria"].items():
                delta = (6 - c["score"]) * c["weight"]
                if agent["total_weighted_score"] + delta <= agent["maximum_score"]:
                    c["score"] = 6
                    c["weighted"] = _num(6 * c["weight"])
                    _agent_sums(agent)
                    return _Break(f"question {qi} agent {agent['id']} {key}: score 6 (above 5)")
    qi, agent = next(_agents(doc))
    key, c = next(iter(agent["criteria"].items()))
    c.update(weight=0, weighted=0, maximum_score=0)
    _agent_sums(agent)
    return _Break(f"question {qi} agent {agent['id']} {key}: weight 0 (must be > 0)")


def _score_03(doc: dict[str, Any], variant: int) -> _Break:
    qi, agent = next(_agents(doc))
    key, c = max(agent["criteria"].items(), key=lambda kv: kv[1]["weighted"])
    if variant % 2 == 0:
        c["weighted"] = _num(c["weighted"] - 0.5 if c["weighted"] >= 0.5 else 0.5)
        what = "weighted != score x weight"
    else:
        c["maximum_score"] = _num(c["maximum_score"] + c["weight"])
        what = "maximum_score != 5 x weight"
    _agent_sums(agent)  # keep the agent's own sums right: only QR-SCORE-03 breaks
    return _Break(f"question {qi} agent {agent['id']} {key}: {what}")


def _score_04(doc: dict[str, Any], variant: int) -> _Break:
    qi, agent = next(_agents(doc))
    if variant % 2 == 0:
        total = agent["total_weighted_score"]
        bumped = total + 1 if total + 1 <= agent["maximum_score"] else total - 1
        agent["total_weighted_score"] = bumped
        return _Break(f"question {qi} agent {agent['id']}: total_weighted_score {bumped} != sum")
    agent["maximum_score"] = agent["maximum_score"] + 5
    return _Break(f"question {qi} agent {agent['id']}: maximum_score != sum of criteria")


def _score_05(doc: dict[str, Any], variant: int) -> _Break:
    choice = variant % 3
    if choice == 2 and doc.get("language_proficiency"):
        doc["language_proficiency"]["fluency"] = 104.0
        return _Break("language_proficiency.fluency = 104.0")
    if choice == 2 and doc.get("code_task_result"):
        doc["code_task_result"]["overall_coding_score"] = 120
        return _Break("code_task_result.overall_coding_score = 120")
    if choice == 1:
        domain = doc["skills"]["domains"][-1]
        domain["score"] = 101.5
        domain.pop("ci_lower", None), domain.pop("ci_upper", None)
        return _Break(f"skills.domains[{domain['name']}].score = 101.5 (interval dropped)")
    skill = doc["skills"]["individual_skills"][0]
    skill["pooled_mean"] = 140.0 if variant % 2 == 0 else -5.0
    skill.pop("ci_lower", None), skill.pop("ci_upper", None)
    return _Break(f"individual skill {skill['skill_name']}: pooled_mean {skill['pooled_mean']}")


def _score_06(doc: dict[str, Any], variant: int) -> _Break:
    if variant % 2 == 0:
        ci = doc["overall_score_ci"]
        moved = ci["upper"] + 1.5 if ci["upper"] + 1.5 <= 100 else ci["lower"] - 1.5
        doc["aggregated_score"] = round(moved, 2)
        return _Break(f"aggregated_score {round(moved, 2)} outside [{ci['lower']}, {ci['upper']}]")
    skill = doc["skills"]["individual_skills"][0]
    mean = skill["pooled_mean"]
    skill["ci_lower"], skill["ci_upper"] = round(mean - 8, 1), round(mean - 1, 1)
    return _Break(f"individual skill {skill['skill_name']}: interval below pooled_mean {mean}")


def _enum_01(doc: dict[str, Any], variant: int) -> _Break:
    doc["interview_type"] = ["TURING_ASTROLOGY", "UNDERWATER_BASKET_WEAVING"][variant % 2]
    return _Break(f"interview_type = {doc['interview_type']!r}")


def _enum_02(doc: dict[str, Any], variant: int) -> _Break:
    doc["status"] = ["REPORT_PENDING_REVIEW", "ARCHIVED"][variant % 2]
    return _Break(f"status = {doc['status']!r}")


def _enum_03(doc: dict[str, Any], variant: int) -> _Break:
    doc["assessment_version"] = ["pf_domain_v9", "ci_v0"][variant % 2]
    return _Break(f"assessment_version = {doc['assessment_version']!r}")


def _enum_04(doc: dict[str, Any], variant: int) -> _Break:
    doc["result"] = [
        "Maybe",
        "Not enough interviews (minimum ten required) for this role to evaluate Pass/Fail.",
        "Not enough interviews (minimum 2.5 required) for this role to evaluate Pass/Fail.",
    ][variant % 3]
    return _Break(f"result = {doc['result']!r}")


def _enum_05(doc: dict[str, Any], variant: int) -> _Break:
    domain = next(d for d in doc["skills"]["domains"] if d["type"] != "core")
    domain["type"] = ["mandatory", "nice_to_have"][variant % 2]
    return _Break(f"skills.domains[{domain['name']}].type = {domain['type']!r}")


def _cov_01(doc: dict[str, Any], variant: int) -> _Break:
    total = doc["total_core_domains"]
    doc["covered_core_domains"] = total + 1
    doc["uncovered_domains"] = []
    doc["result"] = "Fail"
    if variant % 2 == 0:
        del doc["skills"]["domains"]  # without domains QR-COV-05 does not apply
        return _Break(f"covered_core_domains {total + 1} > total {total} (no skills.domains)")
    return _Break(f"covered_core_domains {total + 1} > total {total}", ("QR-COV-05",))


def _cov_02(doc: dict[str, Any], variant: int) -> _Break:
    total = doc["total_core_domains"]
    core = [d["name"] for d in doc["skills"]["domains"] if d["type"] == "core"]
    doc["covered_core_domains"] = total - 2
    doc["uncovered_domains"] = core[:1]
    doc["result"] = "Fail"
    what = f"covered {total - 2} of {total} but uncovered_domains lists only {core[:1]}"
    if variant % 2 == 0:
        del doc["skills"]["domains"]
        return _Break(what + " (no skills.domains)")
    return _Break(what, ("QR-COV-05",))


def _cov_03(doc: dict[str, Any], variant: int) -> _Break:
    core = {d["name"] for d in doc["skills"]["domains"] if d["type"] == "core"}
    if variant % 2 == 0:
        name = next(n for n in ("DevOps", "Security", "Testing", "Cloud") if n not in core)
        doc["uncovered_domains"] = [*doc["uncovered_domains"], name, name]
        return _Break(f"uncovered_domains repeats {name!r}")
    doc["uncovered_domains"] = [*doc["uncovered_domains"], ""]
    return _Break("uncovered_domains holds an empty name")


def _cov_04(doc: dict[str, Any], variant: int) -> _Break:
    total = doc["total_core_domains"]
    _coverage(doc, total - 1)
    doc["result"] = "Pass"
    return _Break(f"result Pass with {total - 1} of {total} core domains covered")


def _life_01(doc: dict[str, Any], variant: int) -> _Break:
    choice = variant % 3
    if choice == 0:
        del doc["result"]
        return _Break("REPORT_GENERATED without result")
    if choice == 1:
        doc["agent_response_summary"] = []
        return _Break("REPORT_GENERATED with an empty agent_response_summary")
    doc["aggregated_score"] = None
    return _Break("REPORT_GENERATED with aggregated_score null")


def _life_02(doc: dict[str, Any], variant: int) -> _Break:
    other = str(uuid.UUID(hashlib.md5(doc["interview_id"].encode()).hexdigest(), version=4))
    doc["interview_id"] = f"{other}_{doc['candidate_id']}"
    return _Break("interview_id in the body differs from the id asked for")


def _life_03(doc: dict[str, Any], variant: int) -> _Break:
    ts = datetime.strptime(doc["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    doc["timestamp"] = [ts.strftime("%m/%d/%Y %H:%M"), ts.strftime("%Y-%m-%dT%H:%M:%S")][
        variant % 2
    ]
    return _Break(f"timestamp = {doc['timestamp']!r} (not ISO 8601 with a zone)")


def _life_04(doc: dict[str, Any], variant: int) -> _Break:
    duration = doc["duration"]
    choice = variant % 3
    if choice == 0:
        period = {"start": "00:01:00.000", "end": "00:01:05.000", "duration": 9.0}
        what = "black-screen duration 9.0 != end - start 5.0"
    elif choice == 1:
        start = (duration - 2) * 1000
        period = {"start": _hms(start), "end": _hms(start + 5000), "duration": 5.0}
        what = f"black screen ends after the interview ({duration} s)"
    else:
        period = {"start": "00:02:05.000", "end": "00:02:00.000", "duration": -5.0}
        what = "black screen ends before it starts"
    doc["black_screen_periods"] = [period]
    return _Break(what)


def _parse(doc: dict[str, Any], variant: int) -> _Break:
    choice = variant % 4
    if choice == 0:
        return _Break("body is an HTML error page, not JSON", body=_HTML_PAGE)
    if choice == 1:
        doc["aggregated_score"] = "high"
        return _Break('aggregated_score = "high" (a string where a number is required)')
    if choice == 2:
        return _Break("body is a JSON array, not an object", body=json.dumps([doc]).encode())
    full = json.dumps(doc, ensure_ascii=False).encode()
    return _Break("body is truncated JSON", body=full[: len(full) // 2])


_Breaker = Callable[[dict[str, Any], int], _Break]

#: Error rule -> breaker. Every rule that a single payload can break is here.
BREAKERS: Final[dict[str, _Breaker]] = {
    "QR-SCORE-01": _score_01,
    "QR-SCORE-02": _score_02,
    "QR-SCORE-03": _score_03,
    "QR-SCORE-04": _score_04,
    "QR-SCORE-05": _score_05,
    "QR-SCORE-06": _score_06,
    "QR-ENUM-01": _enum_01,
    "QR-ENUM-02": _enum_02,
    "QR-ENUM-03": _enum_03,
    "QR-ENUM-04": _enum_04,
    "QR-ENUM-05": _enum_05,
    "QR-COV-01": _cov_01,
    "QR-COV-02": _cov_02,
    "QR-COV-03": _cov_03,
    "QR-COV-04": _cov_04,
    "QR-LIFE-01": _life_01,
    "QR-LIFE-02": _life_02,
    "QR-LIFE-03": _life_03,
    "QR-LIFE-04": _life_04,
    "QR-PARSE": _parse,
}
BREAK_RULES: Final = tuple(BREAKERS)


def _requirements(rule: str, variant: int) -> tuple[tuple[str, ...] | None, bool]:
    """(versions allowed, plain type needed) so that a breaker trips no other rule."""
    no_ci = ("no_ci_v1",)
    with_ci = VERSIONS[1:]
    if rule == "QR-SCORE-01" or (rule == "QR-LIFE-01" and variant % 3 == 2):
        return no_ci, False  # no interval that the new score could fall outside of
    if rule in {"QR-SCORE-06", "QR-ENUM-03"}:
        return with_ci, False
    return None, rule == "QR-ENUM-01"


# --- the dataset -----------------------------------------------------------------------------


@dataclass
class _Rendered:
    body: bytes
    expected: Expected


class SandboxDataset:
    """A deterministic set of interviews: ids, bodies, assets, expected verdicts and events.

    Bodies are rendered on first use and cached as bytes, so that serving the same id again costs
    a dict lookup (the benchmark fetches thousands); :meth:`prewarm` renders them all up front.
    """

    def __init__(
        self,
        seed: int = 0,
        count: int = 100,
        broken_share: float = 0.0,
        questions: int = 5,
        agents: int = 3,
        criteria: int = 4,
        transcript_lines: int = 40,
        asset_bytes: int = 2048,
        start_date: date | None = None,
        days: int = 3,
        alias_share: float = 0.2,
    ) -> None:
        if count < 0 or days < 1 or not 0.0 <= broken_share <= 1.0:
            raise ValueError("need count >= 0, days >= 1 and 0 <= broken_share <= 1")
        if min(questions, agents, criteria) < 1 or transcript_lines < 0:
            raise ValueError("questions, agents and criteria must be >= 1")
        self.seed = seed
        self.count = count
        self.broken_share = broken_share
        self.sizes = PayloadSizes(questions, agents, criteria, transcript_lines, asset_bytes)
        self.start_date = start_date or DEFAULT_START_DATE
        self.days = days
        self.alias_share = alias_share
        picker = random.Random(f"{seed}:broken")
        broken = sorted(picker.sample(range(count), round(count * broken_share)))
        rules = list(BREAK_RULES)
        picker.shuffle(rules)
        self._breakers: dict[int, tuple[str, int]] = {
            index: (rules[k % len(rules)], k // len(rules)) for k, index in enumerate(broken)
        }
        self._specs: list[_Spec] | None = None
        self._index: dict[str, int] = {}
        self._cache: dict[str, _Rendered] = {}
        self._events: dict[date, list[dict[str, Any]]] = {}

    # ids and specs

    def _spec_for(self, index: int) -> _Spec:
        rng = random.Random(f"{self.seed}:{index}")
        candidate = _uuid(rng)
        interview_id = f"{_uuid(rng)}_{candidate}"
        session = _uuid(rng)
        breaker = self._breakers.get(index)
        if rng.random() < 0.15:
            role, mapped = _AWKWARD_ROLES[rng.randrange(len(_AWKWARD_ROLES))]
        else:
            role, mapped = _ORDINARY_ROLES[rng.randrange(len(_ORDINARY_ROLES))]
        itype = _pick_type(rng)
        version = rng.choice(VERSIONS)
        status = REPORT_GENERATED
        status_draw = rng.random()
        if breaker is None and status_draw >= 0.86:
            status = rng.choice([s for s in STATUSES if s != REPORT_GENERATED])
            if rng.random() < 0.3:
                status = status.lower()  # the documentation's own example is lower case
        if breaker is not None:
            versions, plain = _requirements(*breaker)
            if versions is not None and version not in versions:
                version = versions[rng.randrange(len(versions))]
            if plain and itype not in _PLAIN_TYPES:
                itype = _PLAIN_TYPES[rng.randrange(len(_PLAIN_TYPES))]
        day = self.start_date + timedelta(days=index % self.days)
        ts = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(86_400)
        )
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        login = first.lower().replace("ë", "e")
        alias = None
        alias_draw = rng.random()
        if breaker is None and alias_draw < self.alias_share:
            alias = _ALIAS_CHOICES[rng.randrange(len(_ALIAS_CHOICES))]
        return _Spec(
            render_key=f"{self.seed}:{index}:render",
            index=index,
            interview_id=interview_id,
            candidate_id=candidate,
            session_id=session,
            email=f"{login}.{index}@example.com",
            fullname=f"{first} {last}",
            role_title=role,
            mapped_role_title=mapped,
            interview_type=itype,
            status=status,
            version=version,
            timestamp=ts,
            duration=rng.randint(600, 3600),
            breaker=breaker,
            alias=alias,
            metadata={"req_id": f"REQ-{index}", "source": "sandbox"},
            extra_key=rng.random() < 0.15,
            iframe_url=f"https://turing.qode.world/interview/{interview_id[:8]}",
        )

    @property
    def specs(self) -> list[_Spec]:
        """Every interview's cheap choices (id, status, dates...), computed once, in order."""
        if self._specs is None:
            specs = [self._spec_for(i) for i in range(self.count)]
            self._index = {s.interview_id: s.index for s in specs}
            self._specs = specs
        return self._specs

    @property
    def ids(self) -> list[str]:
        """Every interview id, in generation order (``<uuid>_<candidate uuid>``)."""
        return [s.interview_id for s in self.specs]

    def __contains__(self, interview_id: object) -> bool:
        _ = self.specs
        return interview_id in self._index

    def __len__(self) -> int:
        return self.count

    def _spec(self, interview_id: str) -> _Spec:
        _ = self.specs
        return self.specs[self._index[interview_id]]  # KeyError for an unknown id

    # bodies and verdicts

    def _rendered(self, interview_id: str) -> _Rendered:
        hit = self._cache.get(interview_id)
        if hit is not None:
            return hit
        spec = self._spec(interview_id)
        doc = _render(spec, self.sizes)
        body, expected = _finish(doc, spec)
        # setdefault: if another thread rendered it meanwhile, everyone shares one bytes object
        return self._cache.setdefault(interview_id, _Rendered(body, expected))

    def body(self, interview_id: str) -> bytes:
        """The exact bytes the server answers for ``interview_id`` (KeyError if unknown)."""
        return self._rendered(interview_id).body

    def document(self, interview_id: str) -> dict[str, Any]:
        """The JSON object served; for a body that is not a JSON object, the document it
        was made from (``expected(...).breaks`` says how it was mangled)."""
        spec = self._spec(interview_id)
        doc = _render(spec, self.sizes)
        if spec.breaker is not None:
            rule, variant = spec.breaker
            BREAKERS[rule](doc, variant)
        elif spec.alias is not None:
            doc = _rename(doc, *spec.alias)
        return doc

    def expected(self, interview_id: str) -> Expected:
        """The verdict, failed error rules and warnings the quality gate must report."""
        return self._rendered(interview_id).expected

    def expected_all(self) -> dict[str, Expected]:
        """:meth:`expected` for every id (renders every body once)."""
        return {i: self.expected(i) for i in self.ids}

    def asset(self, interview_id: str) -> bytes:
        """The identity screenshot of ``interview_id``: a valid PNG of about ``asset_bytes``."""
        return make_png(f"{self.seed}:{interview_id}", self.sizes.asset_bytes)

    def prewarm(self) -> None:
        """Render every body now, so that serving never pays for generation."""
        for interview_id in self.ids:
            self._rendered(interview_id)

    # events

    def events(self, day: date) -> list[dict[str, Any]]:
        """Interview events (camelCase, as Qode emits them) whose timestamp falls on ``day``."""
        cached = self._events.get(day)
        if cached is None:
            every = [e for spec in self.specs for e in _events_of(spec)]
            chosen = [e for e in every if e["timestamp"][:10] == day.isoformat()]
            chosen.sort(key=lambda e: (e["timestamp"], e["interviewId"], e["_seq"]))
            cached = [{k: v for k, v in e.items() if k != "_seq"} for e in chosen]
            self._events[day] = cached
        return [dict(e) for e in cached]

    def events_jsonl(self, day: date) -> bytes:
        """:meth:`events` as JSON Lines, the file format a receiver is assumed to write."""
        return b"".join(
            json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in self.events(day)
        )

    def dates(self) -> list[date]:
        """The days the interviews' timestamps fall on."""
        return [self.start_date + timedelta(days=d) for d in range(self.days)]

    def dump(self, directory: str | Path) -> Path:
        """Write a replay directory: ``<id>.json`` bodies, identity assets, ``expected.json``
        and ``events/<date>.jsonl``, the layout :class:`~.server.SandboxServer` replays."""
        root = Path(directory)
        (root / "assets" / "identity").mkdir(parents=True, exist_ok=True)
        (root / "events").mkdir(exist_ok=True)
        for interview_id in self.ids:
            (root / f"{interview_id}.json").write_bytes(self.body(interview_id))
            (root / "assets" / "identity" / f"{interview_id}.png").write_bytes(
                self.asset(interview_id)
            )
        expected = {i: e.to_dict() for i, e in self.expected_all().items()}
        (root / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False))
        for day in self.dates():
            (root / "events" / f"{day.isoformat()}.jsonl").write_bytes(self.events_jsonl(day))
        return root


def _rename(doc: dict[str, Any], key: str, alias: str) -> dict[str, Any]:
    """``doc`` with ``key`` sent under ``alias``, in the same position."""
    return {alias if k == key else k: v for k, v in doc.items()}


def _finish(doc: dict[str, Any], spec: _Spec) -> tuple[bytes, Expected]:
    """Apply the spec's breaker or alias; serialise; say what the quality gate must find."""
    status = spec.status
    if spec.breaker is None:
        aliases: dict[str, str] = {}
        if spec.alias is not None:
            doc = _rename(doc, *spec.alias)
            aliases = {spec.alias[0]: spec.alias[1]}
        body = json.dumps(doc, ensure_ascii=False).encode()
        return body, Expected("published", [], [], [], aliases, status)
    rule, variant = spec.breaker
    result = BREAKERS[rule](doc, variant)
    body = result.body if result.body is not None else json.dumps(doc, ensure_ascii=False).encode()
    expected = Expected(
        "quarantined", [rule], list(result.warnings), [f"{rule}: {result.description}"], {}, status
    )
    return body, expected


# --- events ----------------------------------------------------------------------------------

_FLOW: Final[dict[str, tuple[tuple[str, str, str], ...]]] = {
    # status -> (eventName, realtimeStatus, legacy currentStatus) in order; the last is latest
    "SCHEDULED": (("create_attempt", "INTERVIEW_SCHEDULED", "scheduled"),),
    "STARTED": (
        ("create_attempt", "INTERVIEW_SCHEDULED", "scheduled"),
        ("interview_created", "INTERVIEW_CREATED", "scheduled"),
        ("candidate_ready", "INTERVIEW_GETTING_READY", "in_progress"),
        ("attempt_start", "INTERVIEW_STARTED", "in_progress"),
    ),
    "NO_SHOW": (
        ("create_attempt", "INTERVIEW_SCHEDULED", "scheduled"),
        ("interview_created", "INTERVIEW_CREATED", "scheduled"),
        ("abandon", "INTERVIEW_ABANDONED", "no_show"),
    ),
}
_FINISHING: Final = {
    "INTERVIEW_COMPLETED": ("attempt_end", "INTERVIEW_COMPLETED", "completed"),
    "REPORT_GENERATED": ("attempt_end", "INTERVIEW_COMPLETED", "completed"),
    "CANDIDATE_DROP_OFF": ("abandon", "INTERVIEW_ABANDONED", "dropped_off"),
    "CANDIDATE_ABORTED": ("abandon", "INTERVIEW_ABANDONED", "aborted"),
    "TECHNICAL_GLITCH": ("tech_failure", "INTERVIEW_TECH_FAILURE", "tech_failure"),
}
_TERMINAL: Final = frozenset(
    {"INTERVIEW_COMPLETED", "INTERVIEW_TECH_FAILURE", "INTERVIEW_ABANDONED"}
)


def _events_of(spec: _Spec) -> list[dict[str, Any]]:
    """The events of one interview; the latest carries the document's own timestamp."""
    status = spec.status.upper()
    flow = _FLOW.get(status) or (*_FLOW["STARTED"], _FINISHING[status])
    rng = random.Random(f"{spec.render_key}:events")
    # Walk back from the latest event: the interview itself, then readiness, then scheduling.
    gaps = {
        "attempt_end": spec.duration,
        "abandon": rng.randint(60, 1800),
        "tech_failure": rng.randint(60, 1800),
        "attempt_start": rng.randint(30, 300),
        "candidate_ready": rng.randint(600, 3 * 3600),
        "interview_created": rng.randint(60, 600),
    }
    times = [spec.timestamp]
    for name, _, _ in reversed(flow[1:]):
        times.append(times[-1] - timedelta(seconds=gaps[name]))
    times.reverse()
    events = []
    for seq, ((name, realtime, legacy), ts) in enumerate(zip(flow, times, strict=True)):
        events.append(
            {
                "interviewId": spec.interview_id,
                "currentStatus": legacy,
                "jobId": f"job-{spec.index % 97:04d}",
                "candidateEmailId": spec.email,
                "timestamp": _iso(ts),
                "roleTitle": spec.role_title,
                "eventName": name,
                "eventValue": {"attempt": 1} if name.startswith("attempt") else None,
                "realtimeStatus": realtime,
                "isTerminal": realtime in _TERMINAL,
                "_seq": seq,
            }
        )
    return events


# --- interviews created through the API --------------------------------------------------------


def build_interview(
    *,
    interview_id: str,
    candidate_id: str,
    email: str,
    interview_type: str,
    status: str,
    timestamp: datetime,
    seed: str,
    role_title: str | None = None,
    fullname: str | None = None,
    metadata: dict[str, Any] | None = None,
    session_id: str | None = None,
    iframe_url: str = "",
    sizes: PayloadSizes | None = None,
) -> bytes:
    """The get-details body of an interview created through the sandbox's create call, at
    ``status``; valid against every rule (a created interview is never broken on purpose)."""
    rng = random.Random(seed)
    spec = _Spec(
        render_key=f"{seed}:render",
        index=0,
        interview_id=interview_id,
        candidate_id=candidate_id,
        session_id=session_id or _uuid(rng),
        email=email,
        fullname=fullname or email.split("@")[0],
        role_title=role_title or "Software Engineer",
        mapped_role_title=role_title or "Software Engineer",
        interview_type=interview_type,
        status=status,
        version=rng.choice(VERSIONS),
        timestamp=timestamp,
        duration=rng.randint(600, 3600),
        metadata=metadata,
        iframe_url=iframe_url,
    )
    return json.dumps(_render(spec, sizes or PayloadSizes()), ensure_ascii=False).encode()
