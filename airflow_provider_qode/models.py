"""Typed models of the Qode API (``CONTRACT.md``).

The models check *types* only: values outside an enum or a range are data-quality findings for
``quality/``, not parse errors, so that such a payload is quarantined with a rule id instead of
being refused as unreadable. Unknown keys are kept (``extra="allow"``).

Key names that Qode's public documentation does not give are inferred; every inferred name and
its aliases live in :data:`INFERRED_KEYS`, the one place to correct them.
"""

from __future__ import annotations

import enum
import json
import math
import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from airflow_provider_qode.exceptions import QodeInvalidIdError, QodeResponseError

#: Canonical key -> aliases Qode may send instead. The first name that is present wins.
INFERRED_KEYS: dict[str, tuple[str, ...]] = {
    "duration": ("duration_seconds", "interview_duration"),
    "black_screen_periods": ("black_screen", "black_screens"),
    "aggregated_score": ("overall_score", "interview_score"),
    "result": ("interview_result",),
    "total_core_domains": (),
    "covered_core_domains": (),
    "uncovered_domains": (),
    "language_proficiency": (),
    "code_task_result": (),
    "identity_screenshot_path": (),
    "skills": (),
    "overall_score_ci": (),
    "grading_rubric_result": (),
    "assessment_version": (),
    "latency_analysis": (),
    "status": (),
    "timestamp": ("event_timestamp",),
}

# JSON numbers only: strict mode refuses "50" and true, accepts ints for floats.
Number = Annotated[float, Field(strict=True)]


def _inferred(key: str) -> Any:
    """A field default for an inferred key, accepting its canonical name and every alias."""
    return Field(default=None, validation_alias=AliasChoices(key, *INFERRED_KEYS[key]))


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=False)


class InterviewType(enum.StrEnum):
    """Get-details interview types plus the create types, which may also appear."""

    TURING_STEM = "TURING_STEM"
    TURING_NON_STEM = "TURING_NON_STEM"
    STEM = "STEM"
    NON_STEM = "NON_STEM"
    SOFTWARE_ENGINEER = "SOFTWARE_ENGINEER"
    DOCKER_INTERVIEW = "DOCKER_INTERVIEW"
    DATA_SCIENTIST = "DATA_SCIENTIST"
    SENIOR_STAFF_ML = "SENIOR_STAFF_ML"
    RETAIL_OPERATOR = "RETAIL_OPERATOR"
    FINANCIAL_EXPERT = "FINANCIAL_EXPERT"
    MATERIAL_EXPERT = "MATERIAL_EXPERT"
    MEDICAL_EXPERT = "MEDICAL_EXPERT"
    BUSINESS_ANALYST = "BUSINESS_ANALYST"
    MULTI_BUSINESS_ANALYST = "MULTI_BUSINESS_ANALYST"
    BUSINESS_ANALYST_MCQ = "BUSINESS_ANALYST_MCQ"
    SOFTWARE_ENGINEER_CODING = "SOFTWARE_ENGINEER_CODING"
    CODE_EVALUATOR = "CODE_EVALUATOR"
    DEVOPS_IAC = "DEVOPS_IAC"
    JD_CLOUD_ENGINEER = "JD_CLOUD_ENGINEER"
    LEGAL_EXPERT = "LEGAL_EXPERT"
    JD_MEDICAL_AI = "JD_MEDICAL_AI"
    JD_PHYSICAL_AI = "JD_PHYSICAL_AI"
    JD_MATH_AI = "JD_MATH_AI"
    JD_CHEMISTRY_AI = "JD_CHEMISTRY_AI"
    JD_BIO_AI = "JD_BIO_AI"
    JD_SW_MCP = "JD_SW_MCP"


#: Types accepted by the create call (the get-details-only ``TURING_*`` types are not).
CREATE_INTERVIEW_TYPES: frozenset[InterviewType] = frozenset(
    t for t in InterviewType if not t.value.startswith("TURING_")
)
BUSINESS_ANALYST_TYPES: frozenset[InterviewType] = frozenset(
    {
        InterviewType.BUSINESS_ANALYST,
        InterviewType.BUSINESS_ANALYST_MCQ,
        InterviewType.MULTI_BUSINESS_ANALYST,
    }
)


class InterviewStatus(enum.StrEnum):
    """Interview status; Qode's own example is lower case, so lookups ignore case."""

    SCHEDULED = "SCHEDULED"
    STARTED = "STARTED"
    NO_SHOW = "NO_SHOW"
    CANDIDATE_DROP_OFF = "CANDIDATE_DROP_OFF"
    TECHNICAL_GLITCH = "TECHNICAL_GLITCH"
    INTERVIEW_COMPLETED = "INTERVIEW_COMPLETED"
    REPORT_GENERATED = "REPORT_GENERATED"
    CANDIDATE_ABORTED = "CANDIDATE_ABORTED"

    @classmethod
    def _missing_(cls, value: object) -> InterviewStatus | None:
        if isinstance(value, str):
            return cls.__members__.get(value.strip().upper())
        return None

    @classmethod
    def parse(cls, value: str | None) -> InterviewStatus | None:
        """The status for ``value`` (any case), or None when it is absent or unknown."""
        if value is None:
            return None
        try:
            return cls(value)
        except ValueError:
            return None


#: Statuses after which no report will ever come.
TERMINAL_FAILURE_STATUSES: frozenset[InterviewStatus] = frozenset(
    {
        InterviewStatus.NO_SHOW,
        InterviewStatus.CANDIDATE_DROP_OFF,
        InterviewStatus.TECHNICAL_GLITCH,
        InterviewStatus.CANDIDATE_ABORTED,
    }
)


class AssessmentVersion(enum.StrEnum):
    NO_CI_V1 = "no_ci_v1"
    CI_V2 = "ci_v2"
    PF_DOMAIN_V3 = "pf_domain_v3"
    PF_DOMAIN_3P_V4 = "pf_domain_3p_v4"


class Language(enum.StrEnum):
    EN = "en"
    ZH = "zh"
    ES = "es"
    FR = "fr"
    DE = "de"
    PT = "pt"
    IT = "it"
    NL = "nl"
    JA = "ja"
    KO = "ko"
    DA = "da"
    NO = "no"
    SV = "sv"
    VI = "vi"
    HI = "hi"
    FI = "fi"
    MS = "ms"
    TH = "th"
    RU = "ru"
    ID = "id"


# --- get interview details -------------------------------------------------------------------


class CandidateProfile(_Model):
    avatar: StrictStr | None = None
    fullname: StrictStr | None = None
    year_of_experience: Number | None = None


class SkillSummary(_Model):
    skill_name: StrictStr | None = None
    summary: StrictStr | None = None


class Highlight(_Model):
    highlight_name: StrictStr | None = None
    description: StrictStr | None = None


class ReasonToHire(_Model):
    reason_name: StrictStr | None = None
    description: StrictStr | None = None


class AreaOfExpertise(_Model):
    skill_name: StrictStr | None = None


class TranscriptLine(_Model):
    speaker_name: StrictStr | None = None
    transcript: StrictStr | None = None


class Summary(_Model):
    skill_summaries: list[SkillSummary] | None = None
    highlights: list[Highlight] | None = None
    reason_to_hire: list[ReasonToHire] | None = None
    areas_of_expertise: list[AreaOfExpertise] | None = None
    interview_transcript_line: list[TranscriptLine] | None = None


class BlackScreenPeriod(_Model):
    """``start``/``end`` are ``HH:MM:SS.mmm`` offsets; plain seconds are tolerated."""

    start: StrictStr | Number | None = None
    end: StrictStr | Number | None = None
    duration: Number | None = None


class Criterion(_Model):
    score: Number | None = None
    weight: Number | None = None
    weighted: Number | None = None
    maximum_score: Number | None = None


class Agent(_Model):
    id: StrictStr | None = None
    name: StrictStr | None = None
    role: StrictStr | None = None
    total_weighted_score: Number | None = None
    maximum_score: Number | None = None
    criteria: dict[str, Criterion] | None = None
    step6_summary: dict[str, Any] | None = None


class Question(_Model):
    text: StrictStr | None = None


class AgentResponse(_Model):
    """One question of the multi-agent assessment."""

    question: Question | None = None
    agents: list[Agent] | None = None
    normalization: dict[str, Any] | None = None
    mapping: dict[str, Any] | None = None


class CodeTask(_Model):
    task_id: StrictStr | int | None = None
    title: StrictStr | None = None
    score: Number | None = None


class CodeTaskResult(_Model):
    tasks: list[CodeTask] | None = None
    overall_coding_score: Number | None = None


class Domain(_Model):
    name: StrictStr | None = None
    type: StrictStr | None = None
    weight: Number | None = None
    score: Number | None = None
    ci_lower: Number | None = None
    ci_upper: Number | None = None
    stability: Number | None = None


class IndividualSkill(_Model):
    skill_name: StrictStr | None = None
    domain: StrictStr | None = None
    pooled_mean: Number | None = None
    ci_lower: Number | None = None
    ci_upper: Number | None = None


class Skills(_Model):
    domains: list[Domain] | None = None
    individual_skills: list[IndividualSkill] | None = None


class ScoreCI(_Model):
    lower: Number | None = None
    upper: Number | None = None
    confidence_level: Number | None = None
    interpretation: StrictStr | None = None


class Interview(_Model):
    """The get-details response. Enum-typed keys stay strings; see the ``*_enum`` properties."""

    role_title: StrictStr | None = None
    mapped_role_title: StrictStr | None = None
    candidate_email: StrictStr | None = None
    candidate_id: StrictStr | None = None
    interview_id: StrictStr | None = None
    iframe_url: StrictStr | None = None
    interview_type: StrictStr | None = None
    sub_interview_type: StrictStr | None = None
    request_metadata: dict[str, Any] | None = None
    session_id: StrictStr | None = None
    candidate_profile: CandidateProfile | None = None
    summary: Summary | None = None
    agent_response_summary: list[AgentResponse] | None = None

    duration: Number | None = _inferred("duration")
    black_screen_periods: list[BlackScreenPeriod] | None = _inferred("black_screen_periods")
    aggregated_score: Number | None = _inferred("aggregated_score")
    result: StrictStr | None = _inferred("result")
    total_core_domains: Number | None = _inferred("total_core_domains")
    covered_core_domains: Number | None = _inferred("covered_core_domains")
    uncovered_domains: list[StrictStr | None] | None = _inferred("uncovered_domains")
    language_proficiency: dict[str, Any] | None = _inferred("language_proficiency")
    code_task_result: CodeTaskResult | None = _inferred("code_task_result")
    identity_screenshot_path: StrictStr | None = _inferred("identity_screenshot_path")
    skills: Skills | None = _inferred("skills")
    overall_score_ci: ScoreCI | None = _inferred("overall_score_ci")
    grading_rubric_result: dict[str, Any] | None = _inferred("grading_rubric_result")
    assessment_version: StrictStr | None = _inferred("assessment_version")
    latency_analysis: dict[str, Any] | None = _inferred("latency_analysis")
    status: StrictStr | None = _inferred("status")
    timestamp: StrictStr | None = _inferred("timestamp")

    @property
    def status_enum(self) -> InterviewStatus | None:
        return InterviewStatus.parse(self.status)

    @property
    def interview_type_enum(self) -> InterviewType | None:
        try:
            return InterviewType(self.interview_type) if self.interview_type else None
        except ValueError:
            return None

    @property
    def assessment_version_enum(self) -> AssessmentVersion | None:
        try:
            return AssessmentVersion(self.assessment_version) if self.assessment_version else None
        except ValueError:
            return None

    @property
    def asset_paths(self) -> dict[str, str]:
        """Asset name -> reference (URL or relative path) for every binary asset named."""
        assets: dict[str, str] = {}
        if self.identity_screenshot_path:
            assets["identity_screenshot"] = self.identity_screenshot_path
        return assets


# --- create interview ------------------------------------------------------------------------


class CreateInterviewRequest(BaseModel):
    """Body of the create call; ours to send, so its enums are enforced."""

    model_config = ConfigDict(extra="forbid")

    email: StrictStr
    interview_type: InterviewType
    talent_id: StrictStr | None = None
    name: StrictStr | None = None
    resume_url: StrictStr | None = None
    role_title: StrictStr | None = None
    language: Language | None = None
    metadata: dict[str, Any] | None = None


class CreateInterviewResponse(_Model):
    interview_id: StrictStr
    candidate_id: StrictStr | None = None
    iframe_url: StrictStr | None = None
    expires_at: StrictStr | None = None
    email: StrictStr | None = None
    talent_id: StrictStr | None = None
    completion_status: StrictStr | None = None
    session_id: StrictStr | None = None


# --- interview events ------------------------------------------------------------------------

TERMINAL_REALTIME_STATUSES = frozenset(
    {"INTERVIEW_COMPLETED", "INTERVIEW_TECH_FAILURE", "INTERVIEW_ABANDONED"}
)


class InterviewEvent(BaseModel):
    """One interview event (camelCase on the wire, unlike the REST API)."""

    model_config = ConfigDict(extra="allow", alias_generator=to_camel, populate_by_name=True)

    interview_id: StrictStr
    timestamp: StrictStr
    current_status: StrictStr | None = None
    job_id: StrictStr | None = None
    candidate_email_id: StrictStr | None = None
    role_title: StrictStr | None = None
    event_name: StrictStr | None = None
    event_value: Any = None
    realtime_status: StrictStr | None = None
    is_terminal: StrictBool | None = None

    @property
    def terminal(self) -> bool:
        if self.is_terminal is not None:
            return self.is_terminal
        return (self.realtime_status or "").upper() in TERMINAL_REALTIME_STATUSES


# --- parsing and ids -------------------------------------------------------------------------

#: ISO 8601 date-time with a mandatory time zone, extended or basic format. One definition for
#: the gate (QR-LIFE-03), the lake's date partition and the event window, so that whatever the
#: gate lets through the lake can always partition.
ISO_DATETIME_REGEX = (
    r"^(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)"
    r"|\d{8}T\d{4}(?:\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?:\d{2})?))\Z"
)
ISO_DATETIME = re.compile(ISO_DATETIME_REGEX)


def parse_timestamp(value: object) -> datetime:
    """The UTC instant of an ISO 8601 date-time with a zone; ``ValueError`` for anything else.

    A timestamp without a zone is refused rather than guessed: a guess would move interviews
    between date partitions depending on the machine's local zone. One whose offset moves it
    before year 1 or past 9999 (``0001-01-01T00:30:00+01:00``) names no instant and is refused.
    """
    if not isinstance(value, str) or not ISO_DATETIME.match(value.strip()):
        raise ValueError(f"{value!r} is not an ISO 8601 date-time with a time zone")
    text = value.strip().replace(",", ".")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date and time") from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} in UTC falls outside the years 1 to 9999") from None


#: The sane window of interview dates: nothing before this instant ...
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
#: ... and nothing later than this after the moment of the check (clock skew, time zones).
FUTURE_TOLERANCE = timedelta(days=1)


def timestamp_window_problem(when: datetime, now: datetime | None = None) -> str | None:
    """Why the instant ``when`` cannot be an interview's time, or None when it can.

    A date before 2000 or more than a day ahead is a bad clock or a bad default, and it would
    open a date partition (``dt=0001-01-01``) no reader expects.
    """
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    if when < EARLIEST_TIMESTAMP:
        return f"{when.isoformat()} is before {EARLIEST_TIMESTAMP.date().isoformat()}"
    if when > latest:
        return f"{when.isoformat()} is more than a day in the future"
    return None


_BAD_ID = re.compile(r"[/\\\s]|\.\.")
#: Longest id in UTF-8 bytes: with the longest prefix and partition a key stays far below S3's
#: 1,024-byte limit (see ``lake/layout.py``).
MAX_ID_BYTES = 256


def interview_id_problem(interview_id: object) -> str | None:
    """Why ``interview_id`` may not be used in a URL or an S3 key, or None when it may."""
    if not isinstance(interview_id, str):
        return f"interview id must be a string, got {type(interview_id).__name__}"
    if not interview_id:
        return "interview id is empty"
    try:
        size = len(interview_id.encode("utf-8"))
    except UnicodeEncodeError:
        return f"interview id {interview_id[:80]!r} is not valid Unicode (a lone UTF-16 surrogate)"
    if size > MAX_ID_BYTES:
        return f"interview id is longer than {MAX_ID_BYTES} bytes in UTF-8 ({size})"
    if interview_id == "." or _BAD_ID.search(interview_id):
        return f"interview id {interview_id!r} is '.' or contains '/', '\\', '..' or white space"
    if not interview_id.isprintable():
        return f"interview id {interview_id!r} contains control characters"
    return None


def unicode_text(text: str) -> str:
    """``text`` with lone surrogates escaped (``\\ud800``), so it can be written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def id_text(interview_id: str) -> str:
    """An id as text that UTF-8 can hold, one-to-one: ids without ``\\`` or lone surrogates
    are kept; in the others ``\\`` is doubled and surrogates escaped (both unfit for keys)."""
    if "\\" not in interview_id and unicode_text(interview_id) is interview_id:
        return interview_id
    return unicode_text(interview_id.replace("\\", "\\\\"))


def check_interview_id(interview_id: object) -> str:
    """Return ``interview_id`` if it is safe to put in a URL path and an S3 key, else raise."""
    problem = interview_id_problem(interview_id)
    if problem:
        raise QodeInvalidIdError(problem)
    assert isinstance(interview_id, str)
    return interview_id


def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        value = json.dumps(err.get("input"), default=str)
        if len(value) > 80:
            value = value[:77] + "..."
        parts.append(f"{loc} = {value}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def describe_body(raw: bytes) -> str:
    """A short, safe description of a body that is not what was expected."""
    head = raw[:200].decode("utf-8", "replace").strip()
    kind = "an HTML page" if head[:1] == "<" else "a body"
    snippet = " ".join(head.split())[:80]
    return f"{kind} of {len(raw)} bytes starting {snippet!r}"


# --- strict JSON -----------------------------------------------------------------------------

#: Deepest nesting of arrays and objects accepted. The contract nests about six levels; Python's
#: own parser and every recursive reader after it fail somewhere near a thousand.
MAX_JSON_DEPTH = 64
_LARGEST_DOUBLE = sys.float_info.max
_INFINITY = math.inf
_CONTAINERS = (dict, list)
# Only a ``\uD800``-``\uDFFF`` escape can put a surrogate into a str decoded from UTF-8 bytes.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# JSON's whitespace between a string and a colon: a key written so cannot be counted as '":'.
_SPACE_BEFORE_COLON = re.compile(rb'"[ \t\r\n]+:')


class StrictJSONError(ValueError):
    """Bytes that are not strict JSON (RFC 8259, with I-JSON's limits): other readers of the lake
    would fail on them or read different values than the quality gate did."""


def _refuse_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON number (non-standard constant)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        duplicate = next(key for key, n in counts.items() if n > 1)
        raise StrictJSONError(
            f"duplicate object key {unicode_text(duplicate[:80])!r}: readers disagree on its value"
        )
    return obj


def _check_values(data: Any, check_strings: bool) -> None:
    """Depth, number range and (when escapes were seen) valid Unicode, without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        kind = type(value)
        if kind is dict:
            if depth > MAX_JSON_DEPTH:
                raise StrictJSONError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            if check_strings:
                for key in value:
                    _check_text(key)
            stack.extend((item, depth + 1) for item in value.values())
        elif kind is list:
            if depth > MAX_JSON_DEPTH:
                raise StrictJSONError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            stack.extend((item, depth + 1) for item in value)
        elif kind is float:
            if not math.isfinite(value):
                raise StrictJSONError("a number is too large for a 64-bit float")
        elif kind is int:
            if not -_LARGEST_DOUBLE <= value <= _LARGEST_DOUBLE:
                digits = len(str(abs(value)))
                raise StrictJSONError(f"an integer of {digits} digits does not fit a 64-bit float")
        elif kind is str and check_strings:
            _check_text(value)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StrictJSONError(
            f"a string holds a lone UTF-16 surrogate ({text[exc.start]!r}): not valid Unicode"
        ) from None


class _NotFast(Exception):
    """The fast path cannot vouch for a body: the strict path decides (and words any error)."""


def _finite_float(text: str) -> float:
    value = float(text)
    if value == _INFINITY or value == -_INFINITY:
        raise _NotFast
    return value


def _double_int(text: str) -> int:
    # Fewer than 309 characters: at most 308 digits, below the largest double (1.8e308).
    if len(text) < 309:
        return int(text)
    raise _NotFast


def _shape(data: Any) -> int | None:
    """The number of keys in all of ``data``'s objects, or None when an array or object lies
    deeper than :data:`MAX_JSON_DEPTH`.

    Only containers are followed, each level with one comprehension, so a body costs one quick
    pass over its values instead of :func:`_check_values`'s stack of every value.
    """
    level = [data] if type(data) in _CONTAINERS else []
    depth = keys = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            return None
        deeper: list[Any] = []
        for container in level:
            if type(container) is dict:
                keys += len(container)
                values: Any = container.values()
            else:
                values = container
            deeper += [v for v in values if type(v) in _CONTAINERS]
        level = deeper
    return keys


def _loads_fast(raw: bytes, text: str) -> Any:
    """``text`` parsed when a cheap test proves the strict checks would pass, else ``_NotFast``.

    Numbers are range-checked as they are parsed, lone surrogates are impossible without a
    ``\\uD8..``-``\\uDF..`` escape, and depth is one container-only pass. Duplicate keys are
    ruled out by counting instead of a Python hook per object: with no whitespace between any
    key and its colon, every key of the text ends in ``":``, so when the objects parsed hold as
    many keys as the text holds ``":``, no key was lost to a duplicate (a ``":`` inside a
    string only makes the test fail). Whatever is returned equals what :func:`loads_strict`'s
    strict path returns; every refusal goes to that path, so error messages stay its own.
    """
    if b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None:
        raise _NotFast
    if _SPACE_BEFORE_COLON.search(raw) is not None:
        raise _NotFast
    try:
        data = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_double_int,
        )
    except (ValueError, RecursionError, _NotFast):
        raise _NotFast from None
    if _shape(data) != raw.count(b'":'):
        raise _NotFast
    return data


def _loads_checked(raw: bytes, text: str) -> Any:
    """The strict path: parse with every check, then walk the values; words every refusal."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise StrictJSONError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except StrictJSONError:
        raise
    except ValueError as exc:
        raise StrictJSONError(str(exc)) from None
    _check_values(data, check_strings=_SURROGATE_ESCAPE.search(raw) is not None)
    return data


def loads_strict(raw: bytes) -> Any:
    """Parse ``raw`` as strict JSON; :class:`StrictJSONError` (a ``ValueError``) otherwise.

    Refused, beyond what ``json.loads`` refuses: bytes that are not UTF-8 (UTF-16 and BOMs
    included), ``NaN``/``Infinity``, duplicate object keys, numbers beyond a 64-bit float,
    strings with lone surrogates and nesting deeper than :data:`MAX_JSON_DEPTH`. The fast path
    (:func:`_loads_fast`) takes the common body; whatever it cannot vouch for goes through the
    strict path (:func:`_loads_checked`), which alone words the errors.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJSONError(
            f"not UTF-8: byte 0x{raw[exc.start]:02x} at position {exc.start}"
        ) from None
    try:
        return _loads_fast(raw, text)
    except _NotFast:
        return _loads_checked(raw, text)


def parse_interview(raw: bytes, interview_id: str | None = None) -> Interview:
    """Read a get-details body; raise :class:`QodeResponseError` (keeping ``raw``) if unreadable."""
    try:
        data = loads_strict(raw)
    except StrictJSONError as exc:
        raise QodeResponseError(
            f"response is not JSON ({exc}): {describe_body(raw)}",
            raw=raw,
            interview_id=interview_id,
        ) from None
    if not isinstance(data, dict):
        raise QodeResponseError(
            f"response is JSON {type(data).__name__}, not an object",
            raw=raw,
            interview_id=interview_id,
        )
    try:
        return Interview.model_validate(data)
    except ValidationError as exc:
        raise QodeResponseError(
            f"response does not match the interview model: {_describe_validation_error(exc)}",
            raw=raw,
            interview_id=interview_id,
        ) from None


def unexpected_error_reason(exc: BaseException, doing: str, interview_id: object) -> str:
    """A ``QR-PARSE`` reason for an error no rule foresaw, naming the interview and the error.

    The last-resort catch around each interview quarantines it with this reason (its bytes
    kept) rather than let the error stop the batch on every retry.
    """
    message = " ".join(str(exc).split())[:300]
    return unicode_text(
        f"unexpected {type(exc).__name__} while {doing} interview {interview_id!r}: {message} "
        "(a bug in the provider: please report it with the quarantined bytes)"
    )
