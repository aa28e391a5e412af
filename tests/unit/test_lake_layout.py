"""The lake's pure layout functions: dt, role encoding, keys."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_qode.exceptions import QodeInvalidIdError
from airflow_provider_qode.lake.layout import (
    MAX_PREFIX_BYTES,
    ROLE_HASH_LENGTH,
    ROLE_PATTERN,
    ROLE_SLUG_MAX_LENGTH,
    UNKNOWN_ROLE,
    InvalidTimestampError,
    LakeLayout,
    asset_file_name,
    encode_role,
    interview_date,
    key_segment,
    normalize_prefix,
    role_of,
    role_title_of,
)
from airflow_provider_qode.models import MAX_ID_BYTES, Interview

MAX_ROLE_LENGTH = ROLE_SLUG_MAX_LENGTH + 1 + ROLE_HASH_LENGTH
SAFE_ROLE = re.compile(r"[a-z0-9_-]+")


# --- dt ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2025-11-11T08:04:04Z", "2025-11-11"),
        ("2025-11-11T08:04:04.123456+00:00", "2025-11-11"),
        ("2025-11-11T23:30:00-02:00", "2025-11-12"),  # past midnight in UTC
        ("2025-11-11T01:00:00+05:30", "2025-11-10"),  # before midnight in UTC
        ("2024-12-31T23:59:59-00:01", "2025-01-01"),
        ("  2025-11-11T08:04:04Z ", "2025-11-11"),
        ("2025-02-28T22:00:00-04:00", "2025-03-01"),
    ],
)
def test_interview_date_is_utc_date(timestamp, expected):
    assert interview_date(timestamp) == expected


@pytest.mark.parametrize(
    "timestamp",
    [
        None,
        "",
        "   ",
        1731312244,
        "yesterday",
        "2025-11-11",
        "2025-11-11T08:04:04",
        "2025-13-01T00:00Z",
        "2025-11-11T08:04:04z",  # ISO 8601 designates UTC with a capital Z only
        "2025-11-11T08:04:04+00:00:52",  # offsets with seconds are not ISO 8601
        "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after 9999 in UTC
        "0001-01-01T00:00:00Z",  # a real instant, but no sane interview date
        "1999-12-31T23:59:59Z",
        "2999-01-01T00:00:00Z",
    ],
)
def test_interview_date_refuses_bad_timestamps(timestamp):
    with pytest.raises(InvalidTimestampError) as info:
        interview_date(timestamp)
    assert isinstance(info.value, ValueError)
    assert "timestamp" in str(info.value)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 2),
        max_value=datetime.now() - timedelta(days=2),
        timezones=st.timezones(),
    ).filter(
        lambda m: (m.utcoffset() or timedelta()).seconds % 60 == 0  # ISO offsets are whole minutes
    )
)
def test_interview_date_matches_datetime_in_utc(moment):
    expected = moment.astimezone(UTC).date().isoformat()
    assert interview_date(moment.isoformat()) == expected


def test_interview_date_window_is_now_plus_a_day():
    soon = datetime.now(UTC) + timedelta(hours=20)
    assert interview_date(soon.isoformat()) == soon.date().isoformat()
    with pytest.raises(InvalidTimestampError, match="more than a day in the future"):
        interview_date((datetime.now(UTC) + timedelta(days=2)).isoformat())
    assert interview_date("2000-01-01T00:00:00Z") == "2000-01-01"


# --- role ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Backend Developer", "backend-developer"),
        ("Data Scientist", "data-scientist"),
        ("C Developer", "c-developer"),
        ("3d Artist", "3d-artist"),
        ("Project Manager", "project-manager"),
    ],
)
def test_ordinary_titles_stay_plain_slugs(title, expected):
    assert encode_role(title) == expected


def test_variants_of_one_slug_get_distinct_partitions():
    titles = [
        "Backend Developer",
        "backend developer",
        "Backend  Developer",
        "BACKEND DEVELOPER",
        "Backend-Developer",
        " Backend Developer",
        "Backend Developer ",
        "Backend Developer\n",
    ]
    encodings = [encode_role(t) for t in titles]
    assert len(set(encodings)) == len(titles)
    assert encodings[0] == "backend-developer"
    for enc in encodings[1:]:
        assert enc.startswith("backend-developer_")  # still readable


def test_cpp_and_c_differ():
    assert encode_role("C++ Developer") != encode_role("C Developer")
    assert encode_role("C# Developer") != encode_role("C++ Developer")
    assert encode_role("C++ Developer").startswith("c-developer_")


def test_missing_titles_are_unknown_and_titled_unknown_is_not():
    assert encode_role(None) == UNKNOWN_ROLE
    assert encode_role("") == UNKNOWN_ROLE
    assert encode_role(" \t\n") == UNKNOWN_ROLE
    assert encode_role("Unknown") != UNKNOWN_ROLE
    assert encode_role("unknown") != UNKNOWN_ROLE


@pytest.mark.parametrize(
    "title",
    [
        "../../etc/passwd",
        "a/b",
        "..",
        "/",
        "role\x00with\x1fcontrols\x7f",
        "Engineer 🚀🔥",
        "🚀",
        "软件工程师",
        "Développeur Senior",
        "x" * 10_000,
        "Senior " * 2000,
        "%2e%2e%2fetc",
        "role=admin/dt=2020-01-01",
        "\u202eRTL override",
        "\ud800 lone surrogate",
    ],
)
def test_hostile_titles_are_safe_and_bounded(title):
    role = encode_role(title)
    assert ROLE_PATTERN.fullmatch(role)
    assert SAFE_ROLE.fullmatch(role)
    assert len(role) <= MAX_ROLE_LENGTH
    assert "/" not in role and ".." not in role
    assert role == encode_role(title)  # stable


def test_long_titles_differing_after_the_cut_differ():
    base = "Engineer " * 20
    assert encode_role(base + "A") != encode_role(base + "B")
    assert len(encode_role(base + "A")) <= MAX_ROLE_LENGTH


def test_encoding_is_pinned():
    # The rule is documented and data already in lakes depends on it: changing it moves keys.
    # Hashes grew from 48 to 128 bits (issue #12); plain slugs never changed.
    assert encode_role("backend developer") == "backend-developer_dfe7b23e78177f6f10b9633b96b37fc7"
    assert encode_role("C++ Developer") == "c-developer_a96ea279298526c22599ec8e2d6112ad"
    assert encode_role("软件工程师") == "_8cabe38d46d6a45d1f8cf223ac39925a"
    assert encode_role("Backend Developer") == "backend-developer"


def test_titles_whose_48_bit_hashes_collide_get_distinct_partitions():
    # Found by a 2^25 search against the earlier 12-hex-digit hash: both gave
    # backend-developer_0fbd43fd9eca, so two roles shared one partition.
    first, second = "Backend Developer )]$-<#", "Backend Developer  |[[<#"
    assert first != second
    assert encode_role(first) != encode_role(second)
    assert encode_role(first)[:30] == encode_role(second)[:30] == "backend-developer_0fbd43fd9eca"
    assert ROLE_HASH_LENGTH * 4 >= 96


titles = st.one_of(
    st.text(),
    st.text(alphabet="abcAB -_+#./ ", max_size=12),
    st.lists(st.sampled_from(["Backend", "backend", "Developer", "C", "C++", "QA", "-", " "])).map(
        " ".join
    ),
)


@settings(max_examples=500)
@given(titles, titles)
def test_distinct_titles_get_distinct_partitions(a, b):
    def effective(title):
        return None if not title.strip() else title

    if effective(a) != effective(b):
        assert encode_role(a) != encode_role(b)
    else:
        assert encode_role(a) == encode_role(b)


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_every_partition_is_safe(title):
    role = encode_role(title)
    assert ROLE_PATTERN.fullmatch(role)
    assert 1 <= len(role) <= MAX_ROLE_LENGTH
    assert not role.startswith("-") and not role.endswith("-")


@given(st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=5))
def test_title_case_titles_round_trip_to_plain_slugs(words):
    slug = "-".join(words)
    title = " ".join(w[:1].upper() + w[1:] for w in words)
    if slug != UNKNOWN_ROLE and len(slug) <= ROLE_SLUG_MAX_LENGTH:
        assert encode_role(title) == slug


def test_role_preference_order_is_configurable():
    both = Interview(mapped_role_title="Backend Developer", role_title="Software Engineer")
    assert role_title_of(both) == "Backend Developer"
    assert role_of(both) == "backend-developer"
    assert role_of(both, ("role_title", "mapped_role_title")) == "software-engineer"
    assert role_of(Interview(mapped_role_title="  ", role_title="Data Scientist")) == (
        "data-scientist"
    )
    assert role_of(Interview()) == UNKNOWN_ROLE


# --- keys ----------------------------------------------------------------------------------------

IID = "0b7e6a52-1d3f-4c1e-9a55-2f7c8e1d9b10_c-42"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", ""),
        (None, ""),
        ("/", ""),
        ("lake", "lake/"),
        ("/lake//raw/", "lake/raw/"),
    ],
)
def test_prefix_is_normalised(prefix, expected):
    assert normalize_prefix(prefix) == expected


@pytest.mark.parametrize("prefix", ["../up", "a/./b", "a/\x00"])
def test_unsafe_prefix_is_refused(prefix):
    with pytest.raises(ValueError):
        normalize_prefix(prefix)


def test_keys():
    layout = LakeLayout("/lake/")
    base = layout.interview_base(IID, "2025-11-11", "backend-developer")
    assert base == f"lake/interviews/dt=2025-11-11/role=backend-developer/{IID}/"
    assert layout.interview_key(base) == base + "interview.json"
    assert layout.asset_key(base, "identity_screenshot.png") == (
        base + "assets/identity_screenshot.png"
    )
    qbase = layout.quarantine_base(date(2025, 11, 12), IID)
    assert qbase == f"lake/quarantine/dt=2025-11-12/{IID}/"
    assert layout.reasons_key(qbase) == qbase + "reasons.json"
    assert layout.index_key(IID) == f"lake/_index/{IID}.json"
    assert layout.manifest_key("qode_ingest", "manual__2025-11-12T00:00:00+00:00", 3) == (
        "lake/_manifests/qode_ingest/manual__2025-11-12T00:00:00+00:00/3.json"
    )
    assert layout.quality_keys("d", "r", "c") == (
        "lake/_quality/d/r/c.json",
        "lake/_quality/d/r/c.html",
    )
    assert LakeLayout("").index_key(IID) == f"_index/{IID}.json"


def test_interview_base_from_model():
    interview = Interview(timestamp="2025-11-11T23:30:00-02:00", role_title="C++ Developer")
    base = LakeLayout().interview_base_for(IID, interview)
    assert base == f"interviews/dt=2025-11-12/role={encode_role('C++ Developer')}/{IID}/"


def test_run_date_forms():
    layout = LakeLayout()
    moment = datetime(2025, 11, 11, 23, 0, tzinfo=timezone(timedelta(hours=-3)))
    assert layout.quarantine_base(moment, IID).startswith("quarantine/dt=2025-11-12/")
    assert layout.quarantine_base("2025-11-11T00:00:00+00:00", IID).startswith(
        "quarantine/dt=2025-11-11/"
    )
    with pytest.raises(ValueError):
        layout.quarantine_base("not a date", IID)


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "../x",
        "a/b",
        "a\\b",
        "..",
        "a b",
        "a\tb",
        "a\x00b",
        "x" * 300,
        "é" * 129,  # 129 characters, 258 bytes
        "a\ud800",
        None,
        42,
    ],
)
def test_keys_refuse_hostile_ids(bad_id):
    layout = LakeLayout("lake")
    with pytest.raises(QodeInvalidIdError):
        layout.interview_base(bad_id, "2025-11-11", "backend-developer")
    with pytest.raises(QodeInvalidIdError):
        layout.index_key(bad_id)
    with pytest.raises(QodeInvalidIdError):
        layout.quarantine_base("2025-11-11", bad_id)


def test_longest_keys_stay_under_the_s3_limit():
    layout = LakeLayout("p" * (MAX_PREFIX_BYTES - 1))
    longest_id = "\U0001f680" * (MAX_ID_BYTES // 4)  # 4 bytes each in UTF-8
    role = encode_role("\U0001f680" + "x" * 200)
    assert len(role) == MAX_ROLE_LENGTH
    base = layout.interview_base(longest_id, "2025-11-11", role)
    asset = layout.asset_key(base, "a" * 128)
    quarantine = layout.reasons_key(layout.quarantine_base("2025-11-11", longest_id))
    for key in (asset, quarantine, layout.index_key(longest_id)):
        assert len(key.encode("utf-8")) <= 1024
    with pytest.raises(QodeInvalidIdError):
        layout.index_key(longest_id + "x")
    with pytest.raises(ValueError, match="longer than"):
        LakeLayout("p" * (MAX_PREFIX_BYTES + 1))


@pytest.mark.parametrize("role", ["", "a/b", "..", "Backend", "x" * 100])
def test_interview_base_refuses_unencoded_roles(role):
    with pytest.raises(ValueError):
        LakeLayout().interview_base(IID, "2025-11-11", role)


@pytest.mark.parametrize("dt", ["20251111", "2025-11-11/..", ""])
def test_interview_base_refuses_bad_dt(dt):
    with pytest.raises(ValueError):
        LakeLayout().interview_base(IID, dt, "x")


def test_key_segments_are_escaped_injectively():
    assert key_segment("manual__2025-11-12T00:00:00+00:00") == "manual__2025-11-12T00:00:00+00:00"
    assert key_segment("a/b") == "a%2Fb"
    assert key_segment("a%2Fb") == "a%252Fb"
    assert key_segment("..") == "%2E%2E"
    assert key_segment(7) == "7"
    with pytest.raises(ValueError):
        key_segment("")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("https://cdn.example.com/a/shot.PNG", "identity_screenshot.png"),
        ("assets/i/shot.jpeg?sig=abc.exe", "identity_screenshot.jpeg"),
        ("https://cdn.example.com/a/shot", "identity_screenshot"),
        ("https://cdn.example.com/a/shot.p%2Fng", "identity_screenshot"),
        ("https://cdn.example.com/a/shot.../", "identity_screenshot"),
        ("https://cdn.example.com/a/shot.averyveryverylongextension", "identity_screenshot"),
        (None, "identity_screenshot"),
    ],
)
def test_asset_file_name_keeps_safe_extensions_only(source, expected):
    assert asset_file_name("identity_screenshot", source) == expected


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "a..b", "a b"])
def test_asset_names_are_checked(name):
    with pytest.raises(ValueError):
        LakeLayout.asset_key("interviews/x/", name)
