"""Journals, claims and the later-fetch rule, one writer call at a time (real S3 server)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_provider_qode.lake.store import LakeError
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.models import Interview, parse_interview

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "valid_ci_v2.json"
PREFIX = "lake"


def interview(iid: str, **changes: object) -> tuple[bytes, Interview]:
    doc = {**json.loads(EXAMPLE.read_bytes()), "interview_id": iid, **changes}
    raw = json.dumps(doc).encode()
    return raw, parse_interview(raw)


def writer(client, bucket: str, run: str = "r1", chunk: int = 0, **kwargs) -> LakeWriter:
    return LakeWriter(
        client, bucket, PREFIX, dag_id="d", run_id=run, chunk=chunk, run_date="2025-11-23", **kwargs
    )


def keys(client, bucket: str, part: str = "") -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for p in pages for o in p.get("Contents", []) if part in o["Key"]}


def land(w: LakeWriter, iid: str, raw: bytes, model: Interview, asset: bytes = b"png"):
    plan = w.plan(iid, model)
    written = w.put_asset_stream(plan.base, "identity_screenshot.png", [asset])
    return w.publish(iid, raw, model, [written])


def test_a_journal_that_vanishes_between_list_and_read_is_no_error(s3_client, s3_bucket):
    _, model = interview("sibling")
    sibling = writer(s3_client, s3_bucket, chunk=1)
    sibling.begin([("sibling", model)])
    (journal,) = keys(s3_client, s3_bucket, "/_journal/")

    def close_sibling(**_: object) -> None:  # the sibling finishes right after our listing
        s3_client.meta.events.unregister("after-call.s3.ListObjectsV2", close_sibling)
        s3_client.delete_object(Bucket=s3_bucket, Key=journal)

    s3_client.meta.events.register("after-call.s3.ListObjectsV2", close_sibling)
    raw2, model2 = interview("mine")
    mine = writer(s3_client, s3_bucket, chunk=0)
    assert mine.begin([("mine", model2)]) == 1
    land(mine, "mine", raw2, model2)
    mine.write_manifest()
    assert keys(s3_client, s3_bucket, "/_journal/") == set()


def test_a_dead_journal_is_resolved_by_the_chunks_its_ids_come_back_in(s3_client, s3_bucket):
    ids = ["iv-a", "iv-b"]
    models = {i: interview(i) for i in ids}
    crashed = writer(s3_client, s3_bucket, run="r1", lease=timedelta(0))  # its lease ran out
    crashed.begin([(i, models[i][1]) for i in ids])
    plan = crashed.plan("iv-a", models["iv-a"][1])
    crashed.put_asset_stream(plan.base, "identity_screenshot.gif", [b"orphan"])  # then it died
    (journal,) = keys(s3_client, s3_bucket, "/_journal/")

    # The ids come back in two different chunks of another run.
    for chunk, iid in enumerate(ids):
        w = writer(s3_client, s3_bucket, run="r2", chunk=chunk)
        w.begin([(iid, models[iid][1])])
        land(w, iid, *models[iid])
        w.write_manifest()
        left = keys(s3_client, s3_bucket, "/_journal/")
        if chunk == 0:  # still lists the id not yet back, and only that one
            assert left == {journal}
            doc = json.loads(s3_client.get_object(Bucket=s3_bucket, Key=journal)["Body"].read())
            assert set(doc["directories"]) == {"iv-b"}
    assert keys(s3_client, s3_bucket, "/_journal/") == set()
    assert not keys(s3_client, s3_bucket, "identity_screenshot.gif")  # the orphan was cleaned


def test_a_live_claim_is_waited_for(s3_client, s3_bucket):
    raw, model = interview("iv-c")
    first = writer(s3_client, s3_bucket, run="sensor")
    first.begin([])
    first_plan = first.plan("iv-c", model)  # claimed: not on a fast path
    order: list[str] = []

    second = writer(s3_client, s3_bucket, run="daily")
    second.begin([])
    raw2, model2 = interview("iv-c", mapped_role_title="Data Scientist")
    waiter = threading.Thread(
        target=lambda: (land(second, "iv-c", raw2, model2, b"2"), order.append("second landed"))
    )
    waiter.start()
    time.sleep(0.5)  # room for the second writer to go wrong, if it would
    asset = first.put_asset_stream(first_plan.base, "identity_screenshot.png", [b"1"])
    first.publish("iv-c", raw, model, [asset])
    order.append("first published")
    waiter.join(120)
    assert order == ["first published", "second landed"]
    index = second.read_index("iv-c")
    assert index["role"] == "data-scientist" and index["claim"] is None
    assert len(keys(s3_client, s3_bucket, "/iv-c/interview.json")) == 1


def test_a_copy_from_a_later_fetch_is_not_replaced_by_an_earlier_one(s3_client, s3_bucket):
    late = datetime(2025, 11, 23, 12, tzinfo=UTC)
    raw_new, model_new = interview("iv-d", mapped_role_title="Data Scientist")
    raw_old, model_old = interview("iv-d")
    newer = writer(s3_client, s3_bucket, run="sensor")
    older = writer(s3_client, s3_bucket, run="daily")
    newer.begin([("iv-d", model_new)], fetched_at=late)
    assert older.begin([("iv-d", model_old)], fetched_at=late - timedelta(minutes=5)) == 0
    land(newer, "iv-d", raw_new, model_new, b"new")
    newer.write_manifest()

    result = land(older, "iv-d", raw_old, model_old, b"old")
    older.write_manifest()
    assert result.superseded and result.unchanged and result.role == "data-scientist"
    (only,) = keys(s3_client, s3_bucket, "/iv-d/interview.json")
    assert s3_client.get_object(Bucket=s3_bucket, Key=only)["Body"].read() == raw_new
    assets = keys(s3_client, s3_bucket, "/iv-d/assets/")
    assert [s3_client.get_object(Bucket=s3_bucket, Key=k)["Body"].read() for k in assets] == [
        b"new"
    ]
    assert keys(s3_client, s3_bucket, "/_journal/") == set()
    assert older.read_index("iv-d")["claim"] is None


@pytest.mark.parametrize("moved", [True, False], ids=["moved", "same-place"])
def test_an_earlier_fetch_landing_after_a_later_one_finished_keeps_the_later(
    s3_client, s3_bucket, moved
):
    """No overlap at all: the later fetch's landing is done (journal closed) before the earlier
    fetch's chunk begins, so the earlier one takes the fast path and only then meets the index."""
    late = datetime(2025, 11, 23, 12, tzinfo=UTC)
    changes = {"mapped_role_title": "Data Scientist"} if moved else {"duration": 1234}
    raw_new, model_new = interview("iv-f", **changes)
    raw_old, model_old = interview("iv-f")
    newer = writer(s3_client, s3_bucket, run="sensor")
    newer.begin([("iv-f", model_new)], fetched_at=late)
    land(newer, "iv-f", raw_new, model_new, b"new")
    newer.write_manifest()
    assert keys(s3_client, s3_bucket, "/_journal/") == set()

    older = writer(s3_client, s3_bucket, run="daily")
    assert older.begin([("iv-f", model_old)], fetched_at=late - timedelta(minutes=5)) == 1
    result = land(older, "iv-f", raw_old, model_old, b"new" if not moved else b"old")
    manifest = json.loads(
        s3_client.get_object(Bucket=s3_bucket, Key=older.write_manifest())["Body"].read()
    )

    assert result.superseded and result.unchanged
    (only,) = keys(s3_client, s3_bucket, "/iv-f/interview.json")
    assert s3_client.get_object(Bucket=s3_bucket, Key=only)["Body"].read() == raw_new
    index = older.read_index("iv-f")
    assert index["key"] == only and index["state"] == "published"
    assets = keys(s3_client, s3_bucket, "/iv-f/assets/")
    assert {s3_client.get_object(Bucket=s3_bucket, Key=k)["Body"].read() for k in assets} == {
        b"new"
    }
    assert all(a["key"] in assets for a in index["assets"]) and len(assets) == 1
    # Nothing of the earlier copy stays listed: moved, its directory was removed; in place, its
    # JSON was refused and only the asset PUT (same name, here the same bytes) happened.
    listed = [o["kind"] for o in manifest["objects"] if o["kind"] in ("interview", "asset")]
    assert listed == ([] if moved else ["asset"])
    assert keys(s3_client, s3_bucket, "/_journal/") == set()


def test_waiting_on_a_writer_that_never_lets_go_ends_with_a_clear_error(s3_client, s3_bucket):
    _, model = interview("iv-e")
    holder = writer(s3_client, s3_bucket, run="sensor")
    holder.begin([])
    holder.plan("iv-e", model)  # claimed, and then it hangs (its lease is still running)
    waiter = writer(s3_client, s3_bucket, run="daily", lease=timedelta(seconds=0.3))
    waiter.begin([])
    with pytest.raises(LakeError, match="gave up waiting for the claim on 'iv-e'"):
        waiter.plan("iv-e", model)


def test_the_journal_lease_is_renewed_as_the_writer_works(s3_client, s3_bucket):
    clock = [datetime(2025, 11, 23, 8, tzinfo=UTC)]
    w = writer(s3_client, s3_bucket, now=lambda: clock[0], lease=timedelta(minutes=9))
    raw, model = interview("iv-f")
    w.begin([("iv-f", model)])
    (journal,) = keys(s3_client, s3_bucket, "/_journal/")

    def expires() -> str:
        return json.loads(s3_client.get_object(Bucket=s3_bucket, Key=journal)["Body"].read())[
            "expires_at"
        ]

    assert expires() == "2025-11-23T08:09:00+00:00"
    clock[0] += timedelta(minutes=2)  # less than a third of the lease: no rewrite yet
    w.plan("iv-f", model)
    assert expires() == "2025-11-23T08:09:00+00:00"
    clock[0] += timedelta(minutes=2)
    land(w, "iv-f", raw, model)
    assert expires() == "2025-11-23T08:13:00+00:00"
