"""Poison pills (issue #12): whatever one interview's bytes, id or asset reference, it ends in
exactly one place, with a specific rule, and the rest of its chunk lands.

Real parts only: the stand-in serves each body verbatim from a replay directory, moto's server
holds the lake, and the invariant is checked by listing the bucket, not by asking our code.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_qode.hooks.qode import QodeHook
from airflow_provider_qode.ingest import ChunkSummary, ingest_chunk
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.models import id_text
from airflow_provider_qode.sandbox.generator import SandboxDataset
from tests.fixtures.sandbox import point_qode_conn

DATASET = SandboxDataset(seed=23, count=2, broken_share=0.0, alias_share=0.0)
TEMPLATE: dict[str, Any] = DATASET.document(DATASET.ids[0])
PUBLISHED = "published"
#: A rule set the outcome must equal, PUBLISHED, or None when any quarantine will do.
Expected = frozenset[str] | str | None

_serial = itertools.count()
TRIED: list[int] = [0]  # hostile cases sent through a chunk


@pytest.fixture(scope="module", autouse=True)
def _count_tried():
    """Prints how many hostile cases this module landed (shown with ``pytest -s``)."""
    yield
    print(f"\n{TRIED[0]} hostile cases landed through the stand-in and moto")


@pytest.fixture
def replay(tmp_path: Path, sandbox_factory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in serving ``tmp_path`` and a ``qode_default`` connection to it."""
    DATASET.dump(tmp_path)
    server = sandbox_factory(tmp_path)
    point_qode_conn(monkeypatch, server.base_url, max_retries=0, timeout=5)
    return tmp_path


@dataclass(frozen=True)
class Case:
    """One interview of a chunk: the id asked for, the body served (None: no file), expected."""

    interview_id: str
    body: bytes | None
    expected: Expected


def _doc(interview_id: str, **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(TEMPLATE)
    doc["interview_id"] = interview_id
    doc.update(changes)
    return doc


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=True).encode()


def _with_raw_value(interview_id: str, key: str, raw_value: bytes) -> bytes:
    """The template with ``key`` set to bytes no JSON encoder would write."""
    doc = _doc(interview_id)
    doc.pop(key, None)
    return _dumps(doc)[:-1] + b', "' + key.encode() + b'": ' + raw_value + b"}"


def _valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


PARSE = frozenset({"QR-PARSE"})
LIFE_02 = frozenset({"QR-LIFE-02"})
LIFE_03 = frozenset({"QR-LIFE-03"})

# --- what one hostile interview can be: a function of its (safe) id -> Case ------------------

Build = Callable[[str], Case]


def _good() -> st.SearchStrategy[Build]:
    return st.just(lambda i: Case(i, _dumps(_doc(i)), PUBLISHED))


def _deep() -> st.SearchStrategy[Build]:
    def build(depth: int, inside: bool) -> Build:
        nest = b"[" * depth + b"]" * depth
        return lambda i: Case(i, _with_raw_value(i, "summary", nest) if inside else nest, PARSE)

    return st.builds(build, st.sampled_from([65, 1_000, 100_000]), st.booleans())


def _non_standard_numbers() -> st.SearchStrategy[Build]:
    values = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"]) | st.builds(
        lambda n: b"9" * n, st.integers(min_value=310, max_value=6_000)
    )
    keys = st.sampled_from(["aggregated_score", "duration", "language_proficiency"])

    def build(value: bytes, key: str) -> Build:
        raw = b'{"fluency": ' + value + b"}" if key == "language_proficiency" else value
        return lambda i: Case(i, _with_raw_value(i, key, raw), PARSE)

    return st.builds(build, values, keys)


def _duplicate_keys() -> st.SearchStrategy[Build]:
    def build(key: str) -> Build:
        return lambda i: Case(
            i, _with_raw_value(i, key, b'"x"')[:-1] + b', "' + key.encode() + b'": 1}', PARSE
        )

    return st.builds(build, st.sampled_from(["status", "interview_id", "aggregated_score"]))


def _encodings() -> st.SearchStrategy[Build]:
    def build(encoding: str) -> Build:
        return lambda i: Case(i, json.dumps(_doc(i), ensure_ascii=False).encode(encoding), PARSE)

    return st.builds(build, st.sampled_from(["utf-16", "utf-16-le", "utf-32", "utf-8-sig"]))


def _surrogate_strings() -> st.SearchStrategy[Build]:
    def build(key: str, text: str) -> Build:
        return lambda i: Case(i, _dumps(_doc(i, **{key: text})), PARSE)

    texts = st.builds(
        lambda a, s, b: a + s + b,
        st.text(max_size=5),
        st.sampled_from(["\ud800", "\udfff", "\udc00\ud800"]),
        st.text(max_size=5),
    )
    return st.builds(build, st.sampled_from(["role_title", "status", "result", "timestamp"]), texts)


def _timestamps() -> st.SearchStrategy[Build]:
    soon = datetime.now(UTC) + timedelta(days=2)
    stamps = st.sampled_from(
        [
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2025-02-30T00:00:00Z",
            "2025-11-11T08:04:04",
            soon.isoformat(),
        ]
    ) | st.datetimes(max_value=datetime(1999, 12, 31), timezones=st.just(UTC)).map(
        lambda d: d.isoformat()
    )

    def build(stamp: str) -> Build:
        return lambda i: Case(i, _dumps(_doc(i, timestamp=stamp)), LIFE_03)

    return st.builds(build, stamps)


def _role_titles() -> st.SearchStrategy[Build]:
    def build(title: str) -> Build:
        expected: Expected = PUBLISHED if _valid_unicode(title) else PARSE
        return lambda i: Case(
            i, _dumps(_doc(i, role_title=title, mapped_role_title=title)), expected
        )

    return st.builds(build, st.text(max_size=40))


def _asset_references() -> st.SearchStrategy[Build]:
    refs = st.sampled_from(
        [
            "http://[::1",
            "https://attacker.example.com/x.png",
            "file:///etc/passwd",
            "assets/../../etc/passwd",
            "//evil.example.com/x.png",
            "http://127.0.0.1:0/x.png",
            "javascript:alert(1)",
            "assets/identity/missing.png",
        ]
    ) | st.text(min_size=1, max_size=30)

    def build(ref: str) -> Build:
        # Any refusal or failure of the reference is QR-ASSET; a surrogate never gets that far.
        expected: Expected = frozenset({"QR-ASSET"}) if _valid_unicode(ref) else PARSE
        return lambda i: Case(i, _dumps(_doc(i, identity_screenshot_path=ref)), expected)

    return st.builds(build, refs)


def _garbage() -> st.SearchStrategy[Build]:
    return st.builds(lambda raw: lambda i: Case(i, raw, None), st.binary(max_size=120))


def _hostile_ids() -> st.SearchStrategy[Build]:
    ids = st.sampled_from(
        [
            "",
            ".",
            "..",
            "a/../b",
            "a b",
            "a\x00b",
            "x" * 257,
            "é" * 129,
            "\U0001f680" * 65,
            "a\ud800b",
            "\udfff",
            "a\\b",
            "a\\ud800b",
        ]
    ) | st.text(min_size=1, max_size=8).map(lambda t: t + "\ud800")

    def build(bad_id: str) -> Build:
        return lambda _i: Case(bad_id, None, LIFE_02)

    return st.builds(build, ids)


HOSTILE = st.one_of(
    _deep(),
    _non_standard_numbers(),
    _duplicate_keys(),
    _encodings(),
    _surrogate_strings(),
    _timestamps(),
    _role_titles(),
    _asset_references(),
    _garbage(),
    _hostile_ids(),
)
#: Suffixes that make an id unusual but valid: the id must still publish under itself.
ID_FLAVOURS = st.sampled_from(["", "-ü", "_データ", "-🚀", ":~+=@,", "%41"])


# --- the lake, by listing ---------------------------------------------------------------------


def _keys(s3_client, bucket: str, prefix: str) -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for p in pages for o in p.get("Contents", [])]


def _places(s3_client, bucket: str, prefix: str) -> dict[str, list[Any]]:
    """Id (as the lake writes it) -> every place it is found: 'published' or its rules."""
    places: dict[str, list[Any]] = defaultdict(list)
    keys = _keys(s3_client, bucket, prefix)
    for key in keys:
        parts = key[len(prefix) :].split("/")
        if parts[0] == "interviews" and parts[-1] == "interview.json":
            places[parts[3]].append(PUBLISHED)
        elif parts[0] == "quarantine" and parts[-1] == "reasons.json":
            body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
            reasons = json.loads(body)
            assert key[: -len("reasons.json")] + "interview.json" in keys
            places[reasons["interview_id"]].append(frozenset(reasons["failed_rules"]))
    return places


def _land(s3_client, bucket: str, prefix: str, cases: list[Case]) -> ChunkSummary:
    writer = LakeWriter(
        s3_client,
        bucket,
        prefix,
        dag_id="poison",
        run_id="run-1",
        chunk="chunk-0",
        run_date="2025-11-30",
    )
    with QodeHook("qode_default") as hook:
        return ingest_chunk(hook, writer, [c.interview_id for c in cases])


def _serve(folder: Path, cases: list[Case]) -> None:
    for case in cases:
        if case.body is not None:
            (folder / f"{case.interview_id}.json").write_bytes(case.body)


def _check_chunk(s3_client, bucket: str, prefix: str, cases: list[Case]) -> ChunkSummary:
    """Land ``cases`` as one chunk and check the invariant against a listing of the bucket."""
    summary = _land(s3_client, bucket, prefix, cases)
    places = _places(s3_client, bucket, prefix)
    wanted = {id_text(c.interview_id): c for c in cases}
    assert len(wanted) == len(cases)  # id_text is one-to-one
    lost = set(wanted) - set(places)
    extra = set(places) - set(wanted)
    duplicated = {i: p for i, p in places.items() if len(p) != 1}
    assert not lost and not extra and not duplicated, (lost, extra, duplicated)
    for text, case in wanted.items():
        (place,) = places[text]
        if case.expected is None:
            assert place != PUBLISHED, case
        else:
            assert place == case.expected, (case, place)
    assert (summary.published + summary.quarantined, summary.missing, summary.failed) == (
        len(cases),
        [],
        {},
    )
    layout = LakeLayout(prefix)
    listing = set(_keys(s3_client, bucket, prefix))
    assert layout.manifest_key("poison", "run-1", "chunk-0") in listing
    assert layout.quality_keys("poison", "run-1", "chunk-0")[0] in listing
    assert not [k for k in listing if k.startswith(layout.journal_prefix)]
    return summary


# --- tests --------------------------------------------------------------------------------------


def test_the_poison_pills_of_issue_12_each_end_in_quarantine(replay, s3_client, s3_bucket):
    def iid(n: int) -> str:
        return f"pill-{n}_{TEMPLATE['candidate_id']}"

    cases = [
        Case(iid(0), _dumps(_doc(iid(0))), PUBLISHED),
        Case(iid(1), b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", PARSE),
        Case(iid(2), _dumps(_doc(iid(2), timestamp="0001-01-01T00:30:00+01:00")), LIFE_03),
        Case(iid(3), _dumps(_doc(iid(3), timestamp="9999-12-31T23:59:59-01:00")), LIFE_03),
        Case(iid(4), _with_raw_value(iid(4), "aggregated_score", b"9" * 400), PARSE),
        Case(iid(5), _dumps(_doc(iid(5), role_title="Dev\ud800")), PARSE),
        Case("pill-6\ud800", None, LIFE_02),
        Case(iid(7), _with_raw_value(iid(7), "aggregated_score", b"NaN"), PARSE),
        Case(iid(8), _with_raw_value(iid(8), "status", b'"x"')[:-1] + b', "status": "y"}', PARSE),
        Case(iid(9), json.dumps(_doc(iid(9))).encode("utf-16"), PARSE),
        Case("é" * 200, None, LIFE_02),
        Case(iid(11), _dumps(_doc(iid(11), timestamp="1999-06-01T00:00:00Z")), LIFE_03),
        Case(
            iid(12),
            _dumps(_doc(iid(12), identity_screenshot_path="http://[::1")),
            frozenset({"QR-ASSET"}),
        ),
        Case(iid(13), _dumps(_doc(iid(13))), PUBLISHED),
    ]
    _serve(replay, cases)
    summary = _check_chunk(s3_client, s3_bucket, "pills/", cases)
    assert (summary.published, summary.quarantined) == (2, 12)
    keys = _keys(s3_client, s3_bucket, "pills/interviews/")
    assert all("dt=0001" not in k and "dt=9999" not in k and "dt=1999" not in k for k in keys)
    TRIED[0] += 12


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    hostile=st.lists(HOSTILE, min_size=3, max_size=6),
    flavours=st.lists(ID_FLAVOURS, min_size=7, max_size=7),
)
def test_any_mix_of_hostile_interviews_leaves_each_id_in_exactly_one_place(
    replay, s3_client, s3_bucket, hostile: list[Build], flavours: list[str]
):
    n = next(_serial)
    suffix = f"_{TEMPLATE['candidate_id']}"
    builds = [*hostile, lambda i: Case(i, _dumps(_doc(i)), PUBLISHED)]
    cases = [build(f"h{n}-{k}{flavours[k]}{suffix}") for k, build in enumerate(builds)]
    cases = list({id_text(c.interview_id): c for c in cases}.values())  # a bad id drawn twice
    _serve(replay, cases)
    _check_chunk(s3_client, s3_bucket, f"ex{n}/", cases)
    TRIED[0] += len(cases) - 1


class _BadGzipHandler(BaseHTTPRequestHandler):
    """Serves the template for any id; ids starting ``gzip-`` get a body that is not gzip."""

    def do_GET(self) -> None:
        interview_id = unquote(self.path.rsplit("/", 1)[-1])
        doc = _doc(interview_id)
        doc.pop("identity_screenshot_path", None)
        body = _dumps(doc)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if interview_id.startswith("gzip-"):
            body = b"this is not gzip at all"
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bad_gzip_server(monkeypatch: pytest.MonkeyPatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadGzipHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    point_qode_conn(monkeypatch, f"http://127.0.0.1:{server.server_address[1]}/api/v1")
    yield
    server.shutdown()
    server.server_close()


def test_a_body_the_http_client_cannot_decode_quarantines_only_its_interview(
    bad_gzip_server, s3_client, s3_bucket
):
    # httpx raises DecodingError, which is no transport error: it used to escape the batch
    # fetch and stop the whole chunk on every retry without naming the interview.
    suffix = f"_{TEMPLATE['candidate_id']}"
    cases = [
        Case(f"good-1{suffix}", None, PUBLISHED),
        Case(f"gzip-1{suffix}", None, PARSE),
        Case(f"good-2{suffix}", None, PUBLISHED),
    ]
    _check_chunk(s3_client, s3_bucket, "gzip/", cases)
    (quarantine,) = _keys(s3_client, s3_bucket, "gzip/quarantine/")[-1:]
    reasons = json.loads(s3_client.get_object(Bucket=s3_bucket, Key=quarantine)["Body"].read())
    # The hook types the corrupt body itself now; the reason names the interview and the cause.
    assert reasons["failed_rules"] == ["QR-PARSE"]
    assert f"gzip-1{suffix}" in reasons["reasons"][0]
    assert "gzip" in reasons["reasons"][0].replace(f"gzip-1{suffix}", "")
