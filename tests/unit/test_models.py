"""Models against the contract's examples, the alias table, and arbitrary JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_qode.exceptions import QodeInvalidIdError, QodeResponseError
from airflow_provider_qode.models import (
    INFERRED_KEYS,
    MAX_ID_BYTES,
    CreateInterviewRequest,
    Interview,
    InterviewEvent,
    InterviewStatus,
    check_interview_id,
    id_text,
    loads_strict,
    parse_interview,
    parse_timestamp,
    timestamp_window_problem,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
SHARED_EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "qode-api" / "examples"
VERDICTS = json.loads((EXAMPLES / "verdicts.json").read_text())
BODIES = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "verdicts.json")


def test_examples_copy_matches_shared_when_present():
    if not SHARED_EXAMPLES.is_dir():
        pytest.skip("../shared is not beside this checkout")
    shared = {p.name: p.read_bytes() for p in SHARED_EXAMPLES.glob("*.json")}
    ours = {p.name: p.read_bytes() for p in EXAMPLES.glob("*.json")}
    assert ours == shared


@pytest.mark.parametrize("path", BODIES, ids=lambda p: p.stem)
def test_every_example_parses_unless_it_is_a_parse_failure(path: Path):
    raw = path.read_bytes()
    if "QR-PARSE" in VERDICTS[path.stem]["failed_rules"]:
        with pytest.raises(QodeResponseError) as info:
            parse_interview(raw)
        assert info.value.raw == raw
        assert "not JSON" in str(info.value)
        return
    interview = parse_interview(raw)
    data = json.loads(raw)
    assert interview.interview_id == data["interview_id"]
    assert interview.agent_response_summary


def test_unknown_keys_are_kept():
    interview = parse_interview(b'{"interview_id": "a_b", "brand_new_key": {"x": [1, 2]}}')
    assert interview.model_extra == {"brand_new_key": {"x": [1, 2]}}


@pytest.mark.parametrize(
    ("canonical", "alias", "value"),
    [(k, a, v) for k, aliases in INFERRED_KEYS.items() for a in aliases for v in [None]],
)
def test_every_alias_fills_the_canonical_field(canonical: str, alias: str, value: object):
    samples = {
        "duration": 12,
        "black_screen_periods": [{"start": "00:00:01.000", "end": "00:00:02.000", "duration": 1}],
        "aggregated_score": 55.5,
        "result": "Pass",
        "timestamp": "2025-11-11T08:04:04Z",
    }
    sample = samples[canonical]
    interview = Interview.model_validate({alias: sample})
    got = getattr(interview, canonical)
    if isinstance(got, list):
        got = [g.model_dump(exclude_none=True) for g in got]
    assert got == sample
    assert alias not in (interview.model_extra or {})


def test_wrong_type_names_the_field():
    with pytest.raises(QodeResponseError) as info:
        parse_interview(b'{"aggregated_score": "high"}')
    assert "aggregated_score" in str(info.value)
    with pytest.raises(QodeResponseError) as info:
        parse_interview(b'{"skills": {"domains": [{"score": true}]}}')
    assert "skills.domains.0.score" in str(info.value)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b"42"])
def test_json_that_is_not_an_object_is_refused(body: bytes):
    with pytest.raises(QodeResponseError, match="not an object"):
        parse_interview(body)


VALID = (EXAMPLES / "valid_ci_v2.json").read_bytes()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"aggregated_score": NaN}', "NaN is not a JSON number"),
        (b'{"a": [Infinity]}', "Infinity is not a JSON number"),
        (b'{"a": {"b": -Infinity}}', "-Infinity is not a JSON number"),
        (b'{"aggregated_score": 50, "aggregated_score": 95}', "duplicate object key"),
        (b'{"skills": {"domains": [{"score": 1, "score": 2}]}}', "duplicate object key"),
        ('{"status": "REPORT_GENERATED"}'.encode("utf-16"), "not UTF-8"),
        ('{"status": "REPORT_GENERATED"}'.encode("utf-16-le"), "Expecting"),
        (b'\xef\xbb\xbf{"status": "x"}', "BOM"),
        (b'{"fullname": "caf\xe9"}', "not UTF-8"),  # Latin-1
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64"),
        (b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}", "nested deeper than 64"),
        (b'{"language_proficiency": {"x": ' + b"9" * 400 + b"}}", "400 digits"),
        (b'{"aggregated_score": 1e400}', "too large for a 64-bit float"),
        (b'{"aggregated_score": ' + b"9" * 5000 + b"}", "digits"),
        (b'{"status": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"\\udfff": 1}', "lone UTF-16 surrogate"),
        (b'{"interview_id": "a\\udc00b"}', "lone UTF-16 surrogate"),
    ],
)
def test_non_standard_json_is_a_parse_error(body: bytes, reason: str):
    with pytest.raises(QodeResponseError, match="not JSON") as info:
        parse_interview(body, "some_id")
    assert reason in str(info.value)
    assert info.value.raw == body and info.value.interview_id == "some_id"
    str(info.value).encode("utf-8")  # the reason itself can be written as UTF-8


def test_strict_json_still_reads_what_is_standard():
    assert loads_strict(b'{"a": "\\ud83d\\ude00", "b": [1.5e300, -0, 1e-400]}') == {
        "a": "\U0001f600",
        "b": [1.5e300, 0, 0.0],
    }
    assert loads_strict(b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}") is not None
    assert parse_interview(VALID).interview_id


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamps_whose_offset_leaves_the_calendar_are_refused(timestamp: str):
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        parse_timestamp(timestamp)


def test_timestamp_window():
    now = datetime(2025, 11, 11, tzinfo=UTC)
    assert timestamp_window_problem(datetime(2000, 1, 1, tzinfo=UTC), now) is None
    assert timestamp_window_problem(now + timedelta(hours=23), now) is None
    assert "before 2000" in (
        timestamp_window_problem(datetime(1999, 12, 31, tzinfo=UTC), now) or ""
    )
    assert "future" in (timestamp_window_problem(now + timedelta(hours=25), now) or "")


def test_ids_are_limited_in_utf8_bytes_not_characters():
    assert check_interview_id("x" * MAX_ID_BYTES)
    assert check_interview_id("é" * (MAX_ID_BYTES // 2))
    with pytest.raises(QodeInvalidIdError, match="bytes in UTF-8"):
        check_interview_id("é" * (MAX_ID_BYTES // 2 + 1))
    with pytest.raises(QodeInvalidIdError, match="lone UTF-16 surrogate"):
        check_interview_id("abc\ud800")


def test_id_text_is_utf8_and_one_to_one():
    ids = ["abc", "a\\b", "a\ud800", "a\\ud800", "a\\\\ud800", "\udfff\\"]
    texts = [id_text(i) for i in ids]
    assert texts[0] == "abc"
    assert len(set(texts)) == len(ids)
    for text in texts:
        text.encode("utf-8")


def test_html_error_page_is_described():
    raw = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
    with pytest.raises(QodeResponseError, match="HTML page") as info:
        parse_interview(raw, "some_id")
    assert info.value.interview_id == "some_id"


def test_status_is_case_insensitive_and_unknown_is_none():
    assert Interview(status="started").status_enum is InterviewStatus.STARTED
    assert Interview(status="Report_Generated").status_enum is InterviewStatus.REPORT_GENERATED
    assert Interview(status="REPORT_PENDING_REVIEW").status_enum is None


def test_event_is_read_from_camel_case():
    event = InterviewEvent.model_validate(
        {
            "interviewId": "x_y",
            "timestamp": "2025-11-11T08:04:04Z",
            "realtimeStatus": "INTERVIEW_COMPLETED",
            "eventName": "attempt_end",
        }
    )
    assert event.interview_id == "x_y" and event.terminal


def test_create_request_enforces_its_enums():
    with pytest.raises(ValueError):
        CreateInterviewRequest.model_validate({"email": "a@b.c", "interview_type": "ASTROLOGY"})
    req = CreateInterviewRequest(email="a@b.c", interview_type="STEM", language="fr")
    assert json.loads(req.model_dump_json(exclude_none=True)) == {
        "email": "a@b.c",
        "interview_type": "STEM",
        "language": "fr",
    }


@pytest.mark.parametrize(
    "bad",
    ["", ".", "a/b", "a\\b", "..", "a..b", "a b", "a\tb", "a\nb", "x" * 300, "a\x00b", 12, None],
)
def test_hostile_ids_are_refused(bad: object):
    with pytest.raises(QodeInvalidIdError):
        check_interview_id(bad)


def test_ordinary_id_is_accepted():
    good = "649dda6e-b49c-43dc-acbc-408cc5521660_f3a3c571-7476-4899-b5a3-adb3254a9493"
    assert check_interview_id(good) == good


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
contract_keys = st.sampled_from(
    [*Interview.model_fields, *(a for aliases in INFERRED_KEYS.values() for a in aliases)]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(contract_keys | st.text(max_size=6), json_values, max_size=8))
def test_models_never_crash_on_arbitrary_json(document: dict):
    raw = json.dumps(document).encode()
    try:
        interview = parse_interview(raw)
    except QodeResponseError as exc:
        assert exc.raw == raw
    else:
        assert isinstance(interview, Interview)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_models_never_crash_on_arbitrary_bytes(raw: bytes):
    try:
        parse_interview(raw)
    except QodeResponseError as exc:
        assert exc.raw == raw
