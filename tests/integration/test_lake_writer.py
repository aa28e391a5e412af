"""The lake writer against a real S3 endpoint (moto's server over a socket)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import pytest

from airflow_provider_qode.exceptions import QodeInvalidIdError
from airflow_provider_qode.lake.layout import (
    InvalidTimestampError,
    LakeLayout,
    asset_file_name,
    encode_role,
)
from airflow_provider_qode.lake.writer import (
    MIN_PART_SIZE,
    LakeError,
    LakeWriter,
    WrittenObject,
)
from airflow_provider_qode.models import Interview, parse_interview
from tests.fixtures.s3 import FlakyClient

MiB = 1024 * 1024
EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "valid_ci_v2.json"
IID = "a931c942-b666-4afe-8dee-318d2b7087bd_5bb58492-9daf-46be-ad21-914625ee8c4c"
PREFIX = "lake/raw"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(**changes: object) -> tuple[bytes, Interview]:
    """Raw bytes and model of the example interview with some fields changed."""
    if not changes:
        raw = EXAMPLE.read_bytes()
    else:
        doc = json.loads(EXAMPLE.read_bytes())
        doc.update(changes)
        raw = json.dumps(doc, indent=3).encode()
    return raw, parse_interview(raw)


def all_keys(s3_client, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def body(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def index_doc(s3_client, bucket: str, interview_id: str = IID) -> dict:
    return json.loads(body(s3_client, bucket, f"{PREFIX}/_index/{interview_id}.json"))


def _drop_condition(request, **_: object) -> None:
    """Send PUTs without ``If-None-Match``: what a store that ignores the header would see."""
    if "If-None-Match" in request.headers:
        del request.headers["If-None-Match"]


@pytest.fixture(autouse=True, params=["honoured", "ignored"])
def store(request, s3_client) -> str:
    """Every writer test runs against a store honouring ``If-None-Match`` and one ignoring it."""
    if request.param == "ignored":
        s3_client.meta.events.register("before-sign.s3.PutObject", _drop_condition)
    return request.param


def s3_calls(client) -> list[tuple[str, str]]:
    """Every S3 request ``client`` sends from now on, as ``(operation, key)``, in order."""
    calls: list[tuple[str, str]] = []

    def note(params, model, **_: object) -> None:
        calls.append((model.name, params.get("Key", "")))

    client.meta.events.register("before-parameter-build.s3", note)
    return calls


def make_writer(client, bucket: str, run: str = "run-1", **kwargs) -> LakeWriter:
    kwargs.setdefault("run_date", "2025-11-23")
    return LakeWriter(
        client, bucket, f"/{PREFIX}/", dag_id="qode_ingest", run_id=run, chunk=0, **kwargs
    )


def publish_with_asset(
    writer: LakeWriter, raw: bytes, interview: Interview, asset: bytes | None = b"PNG-bytes"
):
    plan = writer.plan(IID, interview)
    assets = []
    if asset is not None:
        name = asset_file_name("identity_screenshot", interview.identity_screenshot_path)
        assets.append(writer.put_asset_stream(plan.base, name, iter([asset[:3], asset[3:]])))
    return writer.publish(IID, raw, interview, assets)


def expected_base(dt: str, role_title: str) -> str:
    return f"{PREFIX}/interviews/dt={dt}/role={encode_role(role_title)}/{IID}/"


# --- publish -------------------------------------------------------------------------------------


def test_publish_writes_exactly_the_expected_keys(s3_client, s3_bucket):
    raw, interview = payload()
    writer = make_writer(s3_client, s3_bucket)
    result = publish_with_asset(writer, raw, interview)

    base = expected_base("2025-11-22", "Frontend Developer")
    assert base == f"{PREFIX}/interviews/dt=2025-11-22/role=frontend-developer/{IID}/"
    json_key, asset_key = base + "interview.json", base + "assets/identity_screenshot.png"
    index_key = f"{PREFIX}/_index/{IID}.json"
    assert all_keys(s3_client, s3_bucket) == {json_key, asset_key, index_key}
    assert body(s3_client, s3_bucket, json_key) == raw  # verbatim
    assert body(s3_client, s3_bucket, asset_key) == b"PNG-bytes"
    assert (result.key, result.sha256, result.size) == (json_key, sha(raw), len(raw))
    assert result.assets == (WrittenObject(asset_key, 9, sha(b"PNG-bytes")),)
    assert not result.unchanged

    index = index_doc(s3_client, s3_bucket)
    assert index["state"] == "published"
    assert (index["key"], index["dt"], index["role"]) == (
        json_key,
        "2025-11-22",
        "frontend-developer",
    )
    assert (index["sha256"], index["size"], index["run_id"]) == (sha(raw), len(raw), "run-1")
    assert index["assets"] == [{"key": asset_key, "size": 9, "sha256": sha(b"PNG-bytes")}]
    assert index["pending"] == [] and index["quarantine"] is None and index["published_at"]


def test_the_store_is_probed_once_for_conditional_writes(s3_client, s3_bucket, store):
    writer = make_writer(s3_client, s3_bucket)
    calls = s3_calls(s3_client)
    assert writer.conditional_writes is (store == "honoured")
    assert writer.conditional_writes is (store == "honoured")
    assert [op for op, _ in calls] == ["PutObject", "PutObject", "DeleteObject"]
    assert all_keys(s3_client, s3_bucket) == set()  # the probe key is gone


def test_a_new_id_is_published_without_reading_its_index(s3_client, s3_bucket, store):
    raw, interview = payload()
    writer = make_writer(s3_client, s3_bucket, conditional_writes=store == "honoured")
    calls = s3_calls(s3_client)
    result = publish_with_asset(writer, raw, interview)
    index_key = f"{PREFIX}/_index/{IID}.json"
    writes = [
        ("PutObject", index_key),  # pending, before anything lands in the directory
        ("PutObject", result.assets[0].key),
        ("PutObject", result.key),
        ("PutObject", index_key),  # published
    ]
    reads = [] if store == "honoured" else [("GetObject", index_key)]
    assert calls == reads + writes


def test_an_existing_index_is_read_when_its_create_is_refused(s3_client, s3_bucket, store):
    raw, interview = payload()
    publish_with_asset(make_writer(s3_client, s3_bucket), raw, interview)
    writer = make_writer(s3_client, s3_bucket, run="run-2", conditional_writes=store == "honoured")
    calls = s3_calls(s3_client)
    assert publish_with_asset(writer, raw, interview).unchanged
    index_key = f"{PREFIX}/_index/{IID}.json"
    refused = [("PutObject", index_key)] if store == "honoured" else []
    assert calls[: len(refused) + 1] == [*refused, ("GetObject", index_key)]
    assert ("PutObject", index_key) not in calls[len(refused) :]  # nothing changed: no rewrite


def test_publish_without_plan_or_assets(s3_client, s3_bucket):
    raw, interview = payload()
    result = make_writer(s3_client, s3_bucket).publish(IID, raw, interview)
    assert all_keys(s3_client, s3_bucket) == {result.key, f"{PREFIX}/_index/{IID}.json"}


def test_republishing_the_same_interview_changes_nothing(s3_client, s3_bucket):
    raw, interview = payload()
    first = publish_with_asset(make_writer(s3_client, s3_bucket), raw, interview)
    keys = all_keys(s3_client, s3_bucket)
    index_before = index_doc(s3_client, s3_bucket)

    writer = make_writer(s3_client, s3_bucket, run="run-2")
    second = publish_with_asset(writer, raw, interview)
    assert second.unchanged and second.key == first.key and second.sha256 == first.sha256
    assert all_keys(s3_client, s3_bucket) == keys
    assert index_doc(s3_client, s3_bucket) == index_before  # not rewritten
    actions = {(e.kind, e.action) for e in writer.entries}
    assert actions == {("asset", "written"), ("interview", "unchanged")}


def test_changed_bytes_at_the_same_key_are_rewritten(s3_client, s3_bucket):
    raw, interview = payload()
    publish_with_asset(make_writer(s3_client, s3_bucket), raw, interview)
    raw2, interview2 = payload(aggregated_score=12.5)
    result = publish_with_asset(make_writer(s3_client, s3_bucket, run="run-2"), raw2, interview2)
    assert not result.unchanged
    assert body(s3_client, s3_bucket, result.key) == raw2
    assert index_doc(s3_client, s3_bucket)["sha256"] == sha(raw2)
    assert len(all_keys(s3_client, s3_bucket)) == 3


@pytest.mark.parametrize(
    ("changes", "dt", "role_title"),
    [
        ({"mapped_role_title": "C++ Developer"}, "2025-11-22", "C++ Developer"),
        ({"timestamp": "2025-11-22T23:30:00-01:00"}, "2025-11-23", "Frontend Developer"),
        ({"mapped_role_title": None}, "2025-11-22", "Frontend Engineer"),
    ],
)
def test_moved_interview_ends_up_at_exactly_one_key(s3_client, s3_bucket, changes, dt, role_title):
    raw, interview = payload()
    old = publish_with_asset(make_writer(s3_client, s3_bucket), raw, interview)

    raw2, interview2 = payload(**changes)
    new = publish_with_asset(
        make_writer(s3_client, s3_bucket, run="run-2"), raw2, interview2, b"NEW-PNG"
    )
    base = expected_base(dt, role_title)
    index_key = f"{PREFIX}/_index/{IID}.json"
    assert new.key == base + "interview.json" != old.key
    assert all_keys(s3_client, s3_bucket) == {
        new.key,
        base + "assets/identity_screenshot.png",
        index_key,
    }
    assert set(new.removed) == {old.key, old.assets[0].key}
    assert new.removed[0] == old.key  # the JSON goes first
    assert body(s3_client, s3_bucket, new.key) == raw2
    assert body(s3_client, s3_bucket, base + "assets/identity_screenshot.png") == b"NEW-PNG"
    index = index_doc(s3_client, s3_bucket)
    assert index["key"] == new.key and index["pending"] == [] and index["run_id"] == "run-2"


def test_moving_back_and_forth_keeps_one_copy(s3_client, s3_bucket):
    raw_a, a = payload()
    raw_b, b = payload(mapped_role_title="Backend Developer")
    for run, (raw, interview) in enumerate([(raw_a, a), (raw_b, b), (raw_a, a), (raw_a, a)]):
        result = publish_with_asset(
            make_writer(s3_client, s3_bucket, run=f"r{run}"), raw, interview
        )
        jsons = {k for k in all_keys(s3_client, s3_bucket) if k.endswith("interview.json")}
        assert jsons == {result.key}
    assert len(all_keys(s3_client, s3_bucket)) == 3


def test_renamed_asset_in_the_same_place_replaces_the_old_one(s3_client, s3_bucket):
    raw, interview = payload()
    first = publish_with_asset(make_writer(s3_client, s3_bucket), raw, interview)
    raw2, interview2 = payload(identity_screenshot_path="https://cdn.example.com/shot.jpg")
    second = publish_with_asset(make_writer(s3_client, s3_bucket, run="run-2"), raw2, interview2)
    assert second.key == first.key
    assert second.assets[0].key.endswith("identity_screenshot.jpg")
    assert first.assets[0].key in second.removed
    assert len(all_keys(s3_client, s3_bucket)) == 3


def test_publish_refuses_hostile_ids_and_bad_timestamps(s3_client, s3_bucket):
    raw, interview = payload()
    writer = make_writer(s3_client, s3_bucket)
    with pytest.raises(QodeInvalidIdError):
        writer.publish("../../etc/passwd", raw, interview)
    raw2, no_time = payload(timestamp="yesterday")
    with pytest.raises(InvalidTimestampError):
        writer.publish(IID, raw2, no_time)
    with pytest.raises(ValueError):
        writer.publish(IID, raw, interview, [WrittenObject("elsewhere/x.png", 1, "0")])
    assert all_keys(s3_client, s3_bucket) <= {f"{PREFIX}/_index/{IID}.json"}


# --- quarantine ----------------------------------------------------------------------------------


def test_quarantine_writes_raw_bytes_and_reasons(s3_client, s3_bucket):
    raw = b"<html>not json</html>"
    writer = make_writer(s3_client, s3_bucket)
    result = writer.quarantine(
        IID, raw, ["QR_PARSE"], ["response is not JSON"], "2025-11-23T01:02:03+00:00"
    )
    qbase = f"{PREFIX}/quarantine/dt=2025-11-23/{IID}/"
    assert (result.key, result.reasons_key) == (qbase + "interview.json", qbase + "reasons.json")
    assert all_keys(s3_client, s3_bucket) == {
        result.key,
        result.reasons_key,
        f"{PREFIX}/_index/{IID}.json",
    }
    assert body(s3_client, s3_bucket, result.key) == raw
    reasons = json.loads(body(s3_client, s3_bucket, result.reasons_key))
    assert reasons["interview_id"] == IID
    assert reasons["failed_rules"] == ["QR_PARSE"]
    assert reasons["reasons"] == ["response is not JSON"]
    assert reasons["fetched_at"] == "2025-11-23T01:02:03+00:00"
    assert reasons["run_id"] == "run-1" and reasons["sha256"] == sha(raw)
    index = index_doc(s3_client, s3_bucket)
    assert index["state"] == "quarantined" and index["key"] is None
    assert index["quarantine"]["key"] == result.key


def test_quarantine_writes_its_reasons_before_the_payload(s3_client, s3_bucket):
    writer = make_writer(s3_client, s3_bucket)
    calls = s3_calls(s3_client)
    result = writer.quarantine(IID, b"raw", ["QR_PARSE"], ["not JSON"])
    puts = [key for op, key in calls if op == "PutObject"]
    assert puts.index(result.reasons_key) < puts.index(result.key)


def test_later_publish_removes_the_quarantine_copy(s3_client, s3_bucket):
    make_writer(s3_client, s3_bucket).quarantine(IID, b"{}", ["QR_LIFE_01"], ["not done"])
    raw, interview = payload()
    result = publish_with_asset(
        make_writer(s3_client, s3_bucket, run="run-2", run_date="2025-11-24"), raw, interview
    )
    assert f"{PREFIX}/quarantine/dt=2025-11-23/{IID}/interview.json" in result.removed
    assert not any(k.startswith(f"{PREFIX}/quarantine/") for k in all_keys(s3_client, s3_bucket))
    index = index_doc(s3_client, s3_bucket)
    assert index["state"] == "published" and index["quarantine"] is None


def test_quarantine_keeps_the_last_good_version(s3_client, s3_bucket):
    raw, interview = payload()
    published = publish_with_asset(make_writer(s3_client, s3_bucket), raw, interview)
    w2 = make_writer(s3_client, s3_bucket, run="run-2", run_date="2025-11-24")
    q1 = w2.quarantine(IID, b"bad-1", ["QR_SCORE_01"], ["score out of range"])
    assert q1.published_key == published.key
    w3 = make_writer(s3_client, s3_bucket, run="run-3", run_date="2025-11-25")
    q2 = w3.quarantine(IID, b"bad-2", ["QR_SCORE_02"], ["still wrong"])

    keys = all_keys(s3_client, s3_bucket)
    assert published.key in keys and published.assets[0].key in keys
    assert q1.key not in keys and q2.key in keys  # one quarantine copy: the latest
    assert body(s3_client, s3_bucket, published.key) == raw
    index = index_doc(s3_client, s3_bucket)
    assert index["state"] == "published" and index["key"] == published.key
    assert index["quarantine"]["key"] == q2.key and index["pending"] == []
    reasons = json.loads(body(s3_client, s3_bucket, q2.reasons_key))
    assert reasons["published_key"] == published.key


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "a/b", "", "x\x00y", None, "_invalid-id-x"])
def test_hostile_ids_are_quarantined_under_a_safe_name(s3_client, s3_bucket, bad_id):
    writer = make_writer(s3_client, s3_bucket)
    result = writer.quarantine(bad_id, b"raw", ["QR_ID"], ["bad id"])
    assert result.safe_id.startswith("_invalid-id-")
    assert result.key == f"{PREFIX}/quarantine/dt=2025-11-23/{result.safe_id}/interview.json"
    assert all_keys(s3_client, s3_bucket) == {result.key, result.reasons_key}  # no index
    reasons = json.loads(body(s3_client, s3_bucket, result.reasons_key))
    assert reasons["interview_id"] == (bad_id if isinstance(bad_id, str) else repr(bad_id))
    again = writer.quarantine(bad_id, b"raw", ["QR_ID"], ["bad id"])
    assert again.key == result.key  # stable


# --- crashes and reruns --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "crash",
    [
        pytest.param(lambda op, kw: op == "put_object" and "/_index/" in kw["Key"], id="index"),
        pytest.param(
            lambda op, kw: op == "put_object" and kw["Key"].endswith("interview.json"), id="json"
        ),
        pytest.param(lambda op, kw: op == "delete_objects", id="cleanup"),
    ],
)
def test_a_crashed_move_is_finished_by_a_rerun_elsewhere(s3_client, s3_bucket, crash):
    raw, interview = payload()
    publish_with_asset(make_writer(s3_client, s3_bucket), raw, interview)

    # Run 2 moves the interview to role B and crashes somewhere along the way...
    flaky = FlakyClient(s3_client, crash)
    raw_b, b = payload(mapped_role_title="Backend Developer")
    with pytest.raises(ConnectionError):
        publish_with_asset(make_writer(flaky, s3_bucket, run="run-2"), raw_b, b)
    assert flaky.failed

    # ...and its retry sees yet another role: nothing from A or B may survive.
    raw_c, c = payload(mapped_role_title="Data Scientist")
    result = publish_with_asset(make_writer(s3_client, s3_bucket, run="run-3"), raw_c, c)
    base = expected_base("2025-11-22", "Data Scientist")
    assert all_keys(s3_client, s3_bucket) == {
        result.key,
        base + "assets/identity_screenshot.png",
        f"{PREFIX}/_index/{IID}.json",
    }
    assert index_doc(s3_client, s3_bucket)["pending"] == []


def test_a_crashed_asset_rename_is_finished_by_the_rerun(s3_client, s3_bucket):
    raw, interview = payload()
    first = publish_with_asset(make_writer(s3_client, s3_bucket), raw, interview)
    raw2, interview2 = payload(identity_screenshot_path="https://cdn.example.com/shot.jpg")
    flaky = FlakyClient(s3_client, lambda op, kw: op == "delete_objects")
    with pytest.raises(ConnectionError):
        publish_with_asset(make_writer(flaky, s3_bucket, run="run-2"), raw2, interview2)
    second = publish_with_asset(make_writer(s3_client, s3_bucket, run="run-3"), raw2, interview2)
    assert first.assets[0].key not in all_keys(s3_client, s3_bucket)
    assert len(all_keys(s3_client, s3_bucket)) == 3 and not second.unchanged


def test_an_abandoned_first_attempt_is_swept_by_the_rerun(s3_client, s3_bucket):
    raw, interview = payload()
    writer = make_writer(s3_client, s3_bucket)
    plan = writer.plan(IID, interview)
    writer.put_asset_stream(plan.base, "identity_screenshot.gif", [b"old attempt"])
    # crash: never published. The rerun streams a different asset name at the same place.
    result = publish_with_asset(make_writer(s3_client, s3_bucket, run="run-2"), raw, interview)
    assert all_keys(s3_client, s3_bucket) == {
        result.key,
        result.assets[0].key,
        f"{PREFIX}/_index/{IID}.json",
    }
    assert plan.base + "assets/identity_screenshot.gif" in result.removed


def test_an_abandoned_attempt_is_swept_by_a_quarantine(s3_client, s3_bucket):
    raw, interview = payload()
    writer = make_writer(s3_client, s3_bucket)
    plan = writer.plan(IID, interview)
    writer.put_asset_stream(plan.base, "identity_screenshot.png", [b"x"])
    result = make_writer(s3_client, s3_bucket, run="run-2").quarantine(IID, raw, ["R"], ["r"])
    assert all_keys(s3_client, s3_bucket) == {
        result.key,
        result.reasons_key,
        f"{PREFIX}/_index/{IID}.json",
    }


# --- the chunk journal ---------------------------------------------------------------------------


def journals(s3_client, bucket: str) -> set[str]:
    return {k for k in all_keys(s3_client, bucket) if k.startswith(f"{PREFIX}/_journal/")}


def lake_keys(s3_client, bucket: str) -> set[str]:
    """Every key but manifests and journals: what the interviews themselves occupy."""
    skip = (f"{PREFIX}/_manifests/", f"{PREFIX}/_journal/")
    return {k for k in all_keys(s3_client, bucket) if not k.startswith(skip)}


def journaled_publish(writer: LakeWriter, raw: bytes, interview: Interview):
    """One chunk of one interview, from journal to manifest."""
    writer.begin([(IID, interview)])
    result = publish_with_asset(writer, raw, interview)
    writer.write_manifest()
    return result


def test_a_journaled_new_id_costs_three_requests(s3_client, s3_bucket, store):
    raw, interview = payload()
    writer = make_writer(s3_client, s3_bucket)
    assert writer.begin([(IID, interview)]) == (1 if store == "honoured" else 0)
    calls = s3_calls(s3_client)
    result = publish_with_asset(writer, raw, interview)
    index_key = f"{PREFIX}/_index/{IID}.json"
    if store == "honoured":
        assert calls == [
            ("PutObject", result.assets[0].key),
            ("PutObject", result.key),
            ("PutObject", index_key),
        ]
        assert len(journals(s3_client, s3_bucket)) == 1  # until the chunk is done
    writer.write_manifest()
    assert journals(s3_client, s3_bucket) == set()
    assert lake_keys(s3_client, s3_bucket) == {result.key, result.assets[0].key, index_key}
    index = index_doc(s3_client, s3_bucket)
    assert (index["state"], index["key"], index["pending"]) == ("published", result.key, [])
    assert index["assets"] == [asdict(result.assets[0])]


def test_a_journaled_rerun_rewrites_nothing(s3_client, s3_bucket, store):
    raw, interview = payload()
    journaled_publish(make_writer(s3_client, s3_bucket), raw, interview)
    index_before = index_doc(s3_client, s3_bucket)
    writer = make_writer(s3_client, s3_bucket, run="run-2")
    writer.begin([(IID, interview)])
    calls = s3_calls(s3_client)
    result = publish_with_asset(writer, raw, interview)
    assert result.unchanged
    assert index_doc(s3_client, s3_bucket) == index_before
    assert ("PutObject", f"{PREFIX}/_index/{IID}.json") not in calls
    actions = {(e.kind, e.action) for e in writer.entries}
    assert actions == {("asset", "written"), ("interview", "unchanged")}


def test_a_journaled_move_keeps_one_copy(s3_client, s3_bucket):
    raw, interview = payload()
    journaled_publish(make_writer(s3_client, s3_bucket), raw, interview)
    raw_b, b = payload(mapped_role_title="Backend Developer")
    writer = make_writer(s3_client, s3_bucket, run="run-2")
    result = journaled_publish(writer, raw_b, b)
    assert lake_keys(s3_client, s3_bucket) == {
        result.key,
        result.assets[0].key,
        f"{PREFIX}/_index/{IID}.json",
    }
    assert result.key.startswith(expected_base("2025-11-22", "Backend Developer"))
    assert index_doc(s3_client, s3_bucket)["pending"] == [] and result.removed


@pytest.mark.parametrize(
    "crash",
    [
        pytest.param(
            lambda op, kw: op == "put_object" and kw["Key"].endswith("interview.json"),
            id="after-asset",
        ),
        pytest.param(
            lambda op, kw: op == "put_object" and b'"state": "published"' in kw["Body"],
            id="after-json",
        ),
    ],
)
@pytest.mark.parametrize("rerun_role", ["Frontend Developer", "Data Scientist"])
def test_a_crashed_journaled_attempt_is_cleaned_by_the_rerun(
    s3_client, s3_bucket, store, crash, rerun_role
):
    raw, interview = payload()
    flaky = FlakyClient(s3_client, crash)
    # A lease of zero: the crashed attempt's journal is dead at once, as after its lease ran out.
    writer = make_writer(flaky, s3_bucket, lease=timedelta(0))
    writer.begin([(IID, interview)])
    plan = writer.plan(IID, interview)
    writer.put_asset_stream(plan.base, "identity_screenshot.gif", [b"old attempt"])
    with pytest.raises(ConnectionError):
        writer.publish(IID, raw, interview, [])
    assert flaky.failed  # and the journal stays, where the store has journals:
    assert len(journals(s3_client, s3_bucket)) == (store == "honoured")

    # The retry sees the same or another role; the abandoned directory must not survive.
    raw2, interview2 = payload(mapped_role_title=rerun_role)
    rerun = make_writer(s3_client, s3_bucket, run="run-2")
    result = journaled_publish(rerun, raw2, interview2)
    assert lake_keys(s3_client, s3_bucket) == {
        result.key,
        result.assets[0].key,
        f"{PREFIX}/_index/{IID}.json",
    }
    assert body(s3_client, s3_bucket, result.key) == raw2
    assert journals(s3_client, s3_bucket) == set()  # both journals are closed
    assert index_doc(s3_client, s3_bucket)["pending"] == []


def test_a_journaled_rerun_sweeps_an_unfinished_attempt_recorded_in_the_index(s3_client, s3_bucket):
    raw, interview = payload()
    # An attempt without a journal (per-id pending record) dies after writing its JSON.
    flaky = FlakyClient(
        s3_client, lambda op, kw: op == "put_object" and b'"state": "published"' in kw["Body"]
    )
    writer = make_writer(flaky, s3_bucket)
    plan = writer.plan(IID, interview)
    writer.put_asset_stream(plan.base, "identity_screenshot.gif", [b"old attempt"])
    with pytest.raises(ConnectionError):
        writer.publish(IID, raw, interview, [])

    result = journaled_publish(make_writer(s3_client, s3_bucket, run="run-2"), raw, interview)
    assert not result.unchanged
    assert lake_keys(s3_client, s3_bucket) == {
        result.key,
        result.assets[0].key,
        f"{PREFIX}/_index/{IID}.json",
    }


def test_a_live_journal_of_another_chunk_is_left_alone(s3_client, s3_bucket, store):
    other = "other-chunk-interview"
    raw_other = json.dumps({**json.loads(EXAMPLE.read_bytes()), "interview_id": other}).encode()
    landing = make_writer(s3_client, s3_bucket, run="run-9")
    landing.begin([(other, parse_interview(raw_other))])  # still landing: not finished

    raw, interview = payload()
    journaled_publish(make_writer(s3_client, s3_bucket), raw, interview)
    # the other chunk's journal (where the store has journals) is untouched
    assert len(journals(s3_client, s3_bucket)) == (store == "honoured")
    landing.publish(other, raw_other, parse_interview(raw_other))
    landing.write_manifest()
    assert journals(s3_client, s3_bucket) == set()


def test_a_journaled_interview_whose_asset_fails_is_quarantined_cleanly(s3_client, s3_bucket):
    raw, interview = payload()
    writer = make_writer(s3_client, s3_bucket)
    writer.begin([(IID, interview)])
    plan = writer.plan(IID, interview)
    writer.put_asset_stream(plan.base, "identity_screenshot.png", [b"partial"])
    result = writer.quarantine(IID, raw, ["QR-ASSET"], ["asset failed"])
    writer.write_manifest()
    assert lake_keys(s3_client, s3_bucket) == {
        result.key,
        result.reasons_key,
        f"{PREFIX}/_index/{IID}.json",
    }
    assert journals(s3_client, s3_bucket) == set()


def test_an_unreadable_journal_stops_the_chunk_with_its_key(s3_client, s3_bucket, store):
    key = f"{PREFIX}/_journal/d/r/0/x.json"
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"<html>not a journal</html>")
    _, interview = payload()
    writer = make_writer(s3_client, s3_bucket)
    if store == "ignored":  # no journals on such a store: nothing is read
        assert writer.begin([(IID, interview)]) == 0
        return
    with pytest.raises(LakeError, match=r"x\.json is not a chunk journal"):
        writer.begin([(IID, interview)])


# --- streaming -----------------------------------------------------------------------------------


class CountingClient:
    """Proxies a boto3 client and notes, at each part upload, how much the generator had made."""

    def __init__(self, client, produced: list[int]) -> None:
        self._client = client
        self._produced = produced
        self.part_calls: list[tuple[int, int]] = []  # (bytes produced so far, part size)
        self.put_calls = 0
        self.create_calls = 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def upload_part(self, **kwargs):
        self.part_calls.append((self._produced[0], len(kwargs["Body"])))
        return self._client.upload_part(**kwargs)

    def put_object(self, **kwargs):
        self.put_calls += 1
        return self._client.put_object(**kwargs)

    def create_multipart_upload(self, **kwargs):
        self.create_calls += 1
        return self._client.create_multipart_upload(**kwargs)


def generated(total: int, chunk: int, produced: list[int]) -> Iterator[bytes]:
    """Deterministic pseudo-random bytes, counting what has been handed out."""
    seed = hashlib.sha256(b"seed").digest()
    sent = 0
    n = 0
    while sent < total:
        block = hashlib.sha256(seed + n.to_bytes(8, "big")).digest() * (chunk // 32 + 1)
        piece = block[: min(chunk, total - sent)]
        n += 1
        sent += len(piece)
        produced[0] = sent
        yield piece


def test_multipart_streaming_is_lazy_bounded_and_checksummed(s3_client, s3_bucket):
    total, chunk = 20 * MiB + 12345, 256 * 1024
    produced = [0]
    client = CountingClient(s3_client, produced)
    writer = make_writer(client, s3_bucket, part_size=MIN_PART_SIZE)
    base = LakeLayout(PREFIX).interview_base(IID, "2025-11-22", "x")

    written = writer.put_asset_stream(base, "recording.bin", generated(total, chunk, produced))

    expected = hashlib.sha256(b"".join(generated(total, chunk, [0]))).hexdigest()
    stored = body(s3_client, s3_bucket, written.key)
    assert (written.size, written.sha256) == (total, expected)
    assert (len(stored), sha(stored)) == (total, expected)
    assert client.create_calls == 1 and client.put_calls == 0
    assert [size for _, size in client.part_calls] == [MIN_PART_SIZE] * 4 + [12345]
    # Lazy: parts went out while the generator was still running, never holding more than one
    # part plus one chunk beyond what had been uploaded.
    assert client.part_calls[0][0] <= MIN_PART_SIZE + chunk < total
    uploaded = 0
    for produced_then, size in client.part_calls:
        assert produced_then - uploaded <= MIN_PART_SIZE + chunk
        uploaded += size
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_exactly_one_part_is_a_single_put(s3_client, s3_bucket):
    produced = [0]
    client = CountingClient(s3_client, produced)
    writer = make_writer(client, s3_bucket, part_size=MIN_PART_SIZE)
    written = writer.put_asset_stream(
        "interviews/x/", "a.bin", generated(MIN_PART_SIZE, MiB, produced)
    )
    assert written.size == MIN_PART_SIZE
    assert client.put_calls == 1 and client.create_calls == 0
    empty = writer.put_asset_stream("interviews/x/", "empty.bin", iter([]))
    assert (empty.size, empty.sha256) == (0, sha(b""))
    assert body(s3_client, s3_bucket, empty.key) == b""


def test_a_failing_stream_aborts_the_upload(s3_client, s3_bucket):
    def broken() -> Iterator[bytes]:
        yield b"x" * (6 * MiB)
        raise OSError("asset source went away")

    writer = make_writer(s3_client, s3_bucket, part_size=MIN_PART_SIZE)
    with pytest.raises(OSError, match="went away"):
        writer.put_asset_stream("interviews/x/", "a.bin", broken())
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert all_keys(s3_client, s3_bucket) == set()


def test_part_size_below_the_s3_minimum_is_refused(s3_client, s3_bucket):
    with pytest.raises(ValueError):
        make_writer(s3_client, s3_bucket, part_size=MiB)


# --- manifest, reports, concurrency, Airflow connection -----------------------------------------


def test_manifest_lists_every_object(s3_client, s3_bucket):
    writer = make_writer(s3_client, s3_bucket)
    raw, interview = payload()
    publish_with_asset(writer, raw, interview)
    writer.quarantine("other-id", b"not json", ["QR_PARSE"], ["nope"])
    writer.quarantine("../evil", b"x", ["QR_ID"], ["bad id"])
    report_keys = writer.write_quality_report(b'{"ok": true}', b"<html></html>")
    key = writer.write_manifest()

    assert key == f"{PREFIX}/_manifests/qode_ingest/run-1/0.json"
    manifest = json.loads(body(s3_client, s3_bucket, key))
    listed = {entry["key"]: entry for entry in manifest["objects"]}
    assert set(listed) == all_keys(s3_client, s3_bucket) - {key}
    assert set(report_keys) <= set(listed)
    for obj_key, entry in listed.items():
        data = body(s3_client, s3_bucket, obj_key)
        assert (entry["size"], entry["sha256"]) == (len(data), sha(data)), obj_key
    assert listed[f"{PREFIX}/_quality/qode_ingest/run-1/0.html"]["verdict"] == "report"
    assert manifest["counts"]["published"] == 1 and manifest["counts"]["quarantined"] == 2
    verdicts = {e["verdict"] for e in manifest["objects"] if e["interview_id"] == IID}
    assert verdicts == {"published"}


def test_parallel_publishing_from_a_thread_pool(s3_client, s3_bucket):
    writer = make_writer(s3_client, s3_bucket)
    doc = json.loads(EXAMPLE.read_bytes())
    roles = ["Backend Developer", "Data Scientist", "C++ Developer", None]
    seen_threads: set[str] = set()

    def one(n: int):
        seen_threads.add(threading.current_thread().name)
        iid = f"iv-{n:03d}"
        raw = json.dumps({**doc, "interview_id": iid, "mapped_role_title": roles[n % 4]}).encode()
        interview = parse_interview(raw)
        plan = writer.plan(iid, interview)
        asset = writer.put_asset_stream(plan.base, "identity_screenshot.png", [raw[:50]])
        if n % 5 == 0:
            return writer.quarantine(iid, raw, ["R"], ["r"])
        return writer.publish(iid, raw, interview, [asset])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(40)))
    writer.write_manifest()

    keys = all_keys(s3_client, s3_bucket)
    jsons = [k for k in keys if k.endswith("interview.json")]
    assert len(jsons) == 40 and len(seen_threads) > 1
    assert {r.key for r in results} == set(jsons)
    assert len([k for k in keys if "/assets/" in k]) == 32  # quarantined ones were swept
    assert len([k for k in keys if "/_index/" in k]) == 40


def test_writer_from_an_airflow_connection(s3_client, s3_bucket, aws_conn_env):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    raw, interview = payload()
    writer = make_writer(S3Hook(aws_conn_id=aws_conn_env), s3_bucket)
    result = publish_with_asset(writer, raw, interview)
    assert body(s3_client, s3_bucket, result.key) == raw

    via_conn_id = LakeWriter.from_conn_id(
        aws_conn_env, s3_bucket, PREFIX, dag_id="d", run_id="r", chunk=1, run_date="2025-11-23"
    )
    assert via_conn_id.read_index(IID)["key"] == result.key


def test_only_this_runs_publish_reports_dates_and_only_real_ones(s3_client, s3_bucket):
    """What a retry adds to its touched_dts comes from index documents, which another run, an
    older version or damage may have written: only this run's published copies count, and only
    YYYY-MM-DD dates of real days leave it (the curate task refuses anything else)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from airflow_provider_qode.lake.layout import check_dt

    writer = LakeWriter(
        s3_client, s3_bucket, PREFIX, dag_id="d", run_id="r", chunk="c", run_date="2025-11-30"
    )
    dates = st.dates().map(lambda d: f"{d:%Y-%m-%d}" if d.year >= 1000 else str(d))
    values = st.one_of(dates, st.text(max_size=12), st.none(), st.integers(), st.just("2025-02-30"))
    touched = st.one_of(st.lists(values, max_size=4), values, st.dictionaries(st.text(), values))

    @given(
        state=st.sampled_from(["published", "quarantined", "pending", None]),
        run=st.sampled_from([("d", "r"), ("d", "other"), ("other", "r"), (None, None)]),
        dt=values,
        touched_dts=touched,
        with_touched=st.booleans(),
    )
    @settings(max_examples=300, deadline=None)
    def check(state, run, dt, touched_dts, with_touched):
        doc = {"state": state, "dag_id": run[0], "run_id": run[1], "dt": dt}
        if with_touched:
            doc["touched_dts"] = touched_dts
        found = writer.published_in_this_run(doc)
        for value in found:
            assert check_dt(value) == value
        assert list(found) == sorted(set(found))
        if state != "published" or run != ("d", "r"):
            assert found == ()
            return
        expected = [dt, *(touched_dts if with_touched and isinstance(touched_dts, list) else [])]
        assert set(found) == {v for v in expected if isinstance(v, str) and _real_day(v)}

    check()
    assert writer.published_in_this_run(None) == ()


def _real_day(value: str) -> bool:
    from airflow_provider_qode.lake.layout import check_dt

    try:
        check_dt(value)
    except ValueError:
        return False
    return True
