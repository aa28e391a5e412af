"""One chunk end to end (the code the landing task runs) on bad days: real stand-in, real S3.

Each test serves its own interviews from a replay directory, so it controls the exact bytes.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from airflow_provider_qode.hooks.qode import QodeHook
from airflow_provider_qode.ingest import ingest_chunk
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.operators.interviews import (
    QodeIncompleteChunkError,
    QodeInterviewsToS3Operator,
)
from airflow_provider_qode.sandbox.generator import SandboxDataset
from tests.fixtures.s3 import FlakyClient
from tests.fixtures.sandbox import point_qode_conn

PREFIX = "lake"
DATASET = SandboxDataset(seed=11, count=12, broken_share=0.0, alias_share=0.0)


@pytest.fixture
def replay(tmp_path: Path, sandbox_factory, monkeypatch: pytest.MonkeyPatch):
    """A stand-in serving ``tmp_path`` (edit files between runs) and a qode_default to it."""
    DATASET.dump(tmp_path)
    server = sandbox_factory(tmp_path)
    point_qode_conn(monkeypatch, server.base_url, max_retries=1, timeout=5)
    return tmp_path, server


def _doc(folder: Path, interview_id: str) -> dict:
    return json.loads((folder / f"{interview_id}.json").read_bytes())


def _write(folder: Path, interview_id: str, doc: dict) -> bytes:
    raw = json.dumps(doc, indent=1).encode()
    (folder / f"{interview_id}.json").write_bytes(raw)
    return raw


def _ingest(
    s3_client, bucket: str, ids: list[str], run_id: str = "run-1", prefix: str = PREFIX, **options
):
    writer = LakeWriter(
        s3_client,
        bucket,
        prefix,
        dag_id="test",
        run_id=run_id,
        chunk="chunk-0",
        run_date="2025-11-30",
    )
    with QodeHook("qode_default") as hook:
        return ingest_chunk(hook, writer, ids, **options)


def _keys(s3_client, bucket: str) -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def _index(s3_client, bucket: str, interview_id: str) -> dict:
    key = LakeLayout(PREFIX).index_key(interview_id)
    return json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def _reasons(s3_client, bucket: str, interview_id: str) -> dict:
    qkey = _index(s3_client, bucket, interview_id)["quarantine"]["key"]
    key = qkey.replace("interview.json", "reasons.json")
    return json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_moved_interview_ends_up_at_exactly_one_key(replay, s3_client, s3_bucket):
    folder, _ = replay
    interview_id = DATASET.ids[0]
    first = _ingest(s3_client, s3_bucket, [interview_id])
    assert first.published == 1
    old = _index(s3_client, s3_bucket, interview_id)["key"]

    doc = _doc(folder, interview_id)
    doc["mapped_role_title"] = "Staff Platform Engineer"
    raw = _write(folder, interview_id, doc)
    second = _ingest(s3_client, s3_bucket, [interview_id], run_id="run-2")
    assert second.published == 1 and second.moved == 1

    index = _index(s3_client, s3_bucket, interview_id)
    assert index["key"] != old and "role=staff-platform-engineer/" in index["key"]
    jsons = [k for k in _keys(s3_client, s3_bucket) if k.endswith("/interview.json")]
    assert jsons == [index["key"]]
    body = s3_client.get_object(Bucket=s3_bucket, Key=index["key"])["Body"].read()
    assert body == raw
    assets = [k for k in _keys(s3_client, s3_bucket) if "/assets/" in k]
    assert len(assets) == 1 and assets[0].startswith(index["key"].rsplit("/", 1)[0])


def test_asset_that_cannot_be_fetched_quarantines_with_qr_asset(replay, s3_client, s3_bucket):
    folder, _ = replay
    missing, offsite = DATASET.ids[1], DATASET.ids[2]
    (folder / "assets" / "identity" / f"{missing}.png").unlink()
    doc = _doc(folder, offsite)
    doc["identity_screenshot_path"] = "https://attacker.example.com/steal.png"
    raw = _write(folder, offsite, doc)

    summary = _ingest(s3_client, s3_bucket, [missing, offsite])
    assert summary.quarantined == 2 and summary.published == 0
    assert summary.by_rule["QR-ASSET"] == 2
    assert "HTTP 404" in _reasons(s3_client, s3_bucket, missing)["reasons"][0]
    assert "not in the allowed asset hosts" in _reasons(s3_client, s3_bucket, offsite)["reasons"][0]
    qkey = _index(s3_client, s3_bucket, offsite)["quarantine"]["key"]
    assert s3_client.get_object(Bucket=s3_bucket, Key=qkey)["Body"].read() == raw
    assert not [k for k in _keys(s3_client, s3_bucket) if "/interviews/" in k]


def test_bad_bodies_are_quarantined_with_their_bytes_and_the_rest_lands(
    replay, s3_client, s3_bucket
):
    folder, _ = replay
    html, truncated, array = DATASET.ids[3], DATASET.ids[4], DATASET.ids[5]
    bodies = {
        html: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        truncated: (folder / f"{truncated}.json").read_bytes()[:300],
        array: b"[1, 2, 3]",
    }
    for interview_id, body in bodies.items():
        (folder / f"{interview_id}.json").write_bytes(body)
    good = DATASET.ids[6]
    summary = _ingest(s3_client, s3_bucket, [html, truncated, array, good, "unknown_id"])
    assert (summary.published, summary.quarantined) == (1, 3)
    assert summary.missing == ["unknown_id"]
    for interview_id, body in bodies.items():
        reasons = _reasons(s3_client, s3_bucket, interview_id)
        assert reasons["failed_rules"] == ["QR-PARSE"]
        qkey = _index(s3_client, s3_bucket, interview_id)["quarantine"]["key"]
        assert s3_client.get_object(Bucket=s3_bucket, Key=qkey)["Body"].read() == body
    assert "HTML page" in _reasons(s3_client, s3_bucket, html)["reasons"][0]


def test_interview_that_passes_later_leaves_quarantine(replay, s3_client, s3_bucket):
    folder, _ = replay
    interview_id = DATASET.ids[7]
    good = (folder / f"{interview_id}.json").read_bytes()
    doc = json.loads(good)
    doc["aggregated_score"] = 140
    _write(folder, interview_id, doc)
    assert _ingest(s3_client, s3_bucket, [interview_id]).quarantined == 1
    assert any("/quarantine/" in k for k in _keys(s3_client, s3_bucket))

    (folder / f"{interview_id}.json").write_bytes(good)
    assert _ingest(s3_client, s3_bucket, [interview_id], run_id="run-2").published == 1
    keys = _keys(s3_client, s3_bucket)
    assert not any("/quarantine/" in k for k in keys)
    assert _index(s3_client, s3_bucket, interview_id)["state"] == "published"


def test_run_killed_after_some_chunks_is_completed_by_the_rerun(replay, s3_client, s3_bucket):
    ids = DATASET.ids[:9]
    _ingest(s3_client, s3_bucket, ids[:3])  # the first chunk landed, then the worker died
    for start in range(0, 9, 3):  # the rerun does every chunk again
        _ingest(s3_client, s3_bucket, ids[start : start + 3], run_id="run-2")
    keys = _keys(s3_client, s3_bucket)
    jsons = [k for k in keys if k.endswith("/interview.json")]
    assert len(jsons) == 9 and len(set(jsons)) == 9
    assert sorted(k.rsplit("/", 2)[1] for k in jsons) == sorted(ids)


def _die_at_json_put(n: int, s3_client, bucket: str, ids: list[str]) -> None:
    """Land ``ids`` as run-1's chunk-0 until the worker dies at its n-th interview.json PUT."""
    jsons = itertools.count(1)

    def nth_json(op: str, kw: dict) -> bool:
        return op == "put_object" and kw["Key"].endswith("/interview.json") and next(jsons) == n

    writer = LakeWriter(
        FlakyClient(s3_client, nth_json),
        bucket,
        PREFIX,
        dag_id="test",
        run_id="run-1",
        chunk="chunk-0",
        run_date="2025-11-30",
    )
    with QodeHook("qode_default") as hook, pytest.raises(ConnectionError):
        ingest_chunk(hook, writer, ids)


def test_chunk_killed_mid_landing_is_cleaned_up_by_the_retry(replay, s3_client, s3_bucket):
    folder, _ = replay
    ids = DATASET.ids[:4]
    _die_at_json_put(2, s3_client, s3_bucket, ids)
    assert any("/_journal/" in k for k in _keys(s3_client, s3_bucket))

    # Before the retry every interview changes role: the directories the dead attempt wrote
    # must not survive next to the new ones.
    for interview_id in ids:
        _write(folder, interview_id, {**_doc(folder, interview_id), "mapped_role_title": "QA"})
    summary = _ingest(s3_client, s3_bucket, ids, run_id="run-1")
    assert summary.published == 4
    keys = _keys(s3_client, s3_bucket)
    interview_keys = [k for k in keys if k.startswith(f"{PREFIX}/interviews/")]
    assert len([k for k in interview_keys if k.endswith("/interview.json")]) == 4
    assert all("/role=qa_" in k or "/role=qa/" in k for k in interview_keys), interview_keys
    assert not any("/_journal/" in k for k in keys)
    assert all(_index(s3_client, s3_bucket, i)["pending"] == [] for i in ids)


def test_a_retry_reports_every_partition_its_failed_try_changed(replay, s3_client, s3_bucket):
    """A try that moved interviews and then died pushed no summary, so the retry must name the
    partitions that try changed although it finds those copies in place: the curate task
    rebuilds only what the chunks report. Also when the retry quarantines such a copy."""
    folder, _ = replay
    ids = DATASET.ids[:4]
    for n, interview_id in enumerate(ids):  # one day each, so no other id reports it
        _write(
            folder,
            interview_id,
            {**_doc(folder, interview_id), "timestamp": f"2025-09-0{n + 1}T08:00:00Z"},
        )
    _ingest(s3_client, s3_bucket, ids, run_id="run-0")
    old_dts = {i: _index(s3_client, s3_bucket, i)["dt"] for i in ids}
    assert len(set(old_dts.values())) == 4
    new_day = "2025-10-02"
    for interview_id in ids:
        _write(
            folder,
            interview_id,
            {**_doc(folder, interview_id), "timestamp": f"{new_day}T09:30:00Z"},
        )

    _die_at_json_put(3, s3_client, s3_bucket, ids)
    moved = [i for i in ids if _index(s3_client, s3_bucket, i)["dt"] == new_day]
    assert 2 <= len(moved) < len(ids)
    failing, gone = moved[:2]  # by the retry, one fails the gate and the API lost the other
    _write(folder, failing, {**_doc(folder, failing), "aggregated_score": 140})
    (folder / f"{gone}.json").unlink()

    summary = _ingest(s3_client, s3_bucket, ids, run_id="run-1")
    assert (summary.published, summary.quarantined, summary.missing) == (2, 1, [gone])
    assert summary.touched_dts == {new_day, *old_dts.values()}
    kept = _index(s3_client, s3_bucket, failing)  # what the try's publish changed, recorded
    assert (kept["state"], kept["run_id"]) == ("published", "run-1")
    assert kept["touched_dts"] == sorted({new_day, old_dts[failing]})
    # Another run over the same ids finds them in place and has changed nothing.
    assert _ingest(s3_client, s3_bucket, ids, run_id="run-2").touched_dts == set()


def test_unreachable_ids_fail_the_task_after_everything_else_landed(
    replay, s3_client, s3_bucket, aws_conn_env, airflow_db
):
    _, server = replay
    down, fine = DATASET.ids[8], DATASET.ids[9]
    server.script(down, [503, 503, 503])  # more than max_retries=1 allows
    operator = QodeInterviewsToS3Operator(
        task_id="land", interview_ids=[down, fine], s3_bucket=s3_bucket, s3_prefix=PREFIX
    )
    with pytest.raises(QodeIncompleteChunkError, match="1 of 2 interviews could not be fetched"):
        operator.execute(context={})
    assert _index(s3_client, s3_bucket, fine)["state"] == "published"
    # A retry of the task completes the chunk.
    server.reset()
    result = operator.execute(context={})
    assert result["published"] == 2 and result["failed"] == 0 and result["unchanged"] == 1
    # The failed try pushed no summary: the retry names the partition it published in too.
    dts = {_index(s3_client, s3_bucket, i)["dt"] for i in (down, fine)}
    assert result["touched_dts"] == sorted(dts)
    assert result["manifest_uri"].startswith(f"s3://{s3_bucket}/{PREFIX}/_manifests/")
    assert len(json.dumps(result)) < 4096


def test_fail_on_quarantine_fails_only_when_asked(replay, s3_client, s3_bucket, aws_conn_env):
    from airflow.sdk.exceptions import AirflowFailException

    folder, _ = replay
    interview_id = DATASET.ids[10]
    doc = _doc(folder, interview_id)
    doc["status"] = "SOMETHING_ELSE"
    _write(folder, interview_id, doc)
    kwargs = dict(interview_ids=[interview_id], s3_bucket=s3_bucket, s3_prefix=PREFIX)
    assert QodeInterviewsToS3Operator(task_id="a", **kwargs).execute({})["quarantined"] == 1
    strict = QodeInterviewsToS3Operator(task_id="b", fail_on_quarantine=True, **kwargs)
    with pytest.raises(AirflowFailException, match="1 interviews quarantined"):
        strict.execute({})


def test_operator_refuses_bad_arguments_at_execute(aws_conn_env):
    from airflow_provider_qode.exceptions import QodeConfigError

    with pytest.raises(QodeConfigError, match="list of strings"):
        QodeInterviewsToS3Operator(task_id="x", interview_ids=[1, 2], s3_bucket="b").execute({})
    with pytest.raises(QodeConfigError, match="s3_bucket"):
        QodeInterviewsToS3Operator(task_id="y", interview_ids=["a_b"], s3_bucket="").execute({})


def test_interview_without_timestamp_is_quarantined_not_fatal(replay, s3_client, s3_bucket):
    folder, _ = replay
    no_time, good = DATASET.ids[11], DATASET.ids[0]
    doc = _doc(folder, no_time)
    doc.pop("timestamp", None)
    doc.pop("event_timestamp", None)
    raw = _write(folder, no_time, doc)
    summary = _ingest(s3_client, s3_bucket, [no_time, good])
    assert (summary.published, summary.quarantined) == (1, 1)
    reasons = _reasons(s3_client, s3_bucket, no_time)
    assert reasons["failed_rules"] == ["QR-LIFE-03"]
    assert "date partition" in reasons["reasons"][0]
    qkey = _index(s3_client, s3_bucket, no_time)["quarantine"]["key"]
    assert s3_client.get_object(Bucket=s3_bucket, Key=qkey)["Body"].read() == raw
    # No orphaned pending directory is left behind for the interview that could not be planned.
    assert not [k for k in _keys(s3_client, s3_bucket) if no_time in k and "/interviews/" in k]


def test_a_chunk_landed_in_sub_batches_keeps_one_manifest_one_report_and_the_same_verdicts(
    sandbox_factory, monkeypatch, s3_client, s3_bucket
):
    """A chunk of 23 in sub-batches of 4 against the same chunk in one: same verdicts, same
    outcomes, and still one manifest and one report (JSON and HTML) naming every id."""
    dataset = SandboxDataset(seed=5, count=22, broken_share=0.4, alias_share=0.3)
    server = sandbox_factory(dataset)
    point_qode_conn(monkeypatch, server.base_url, max_retries=1, timeout=5)
    ids = [*dataset.ids, "never-served"]  # a 404 too

    def land(prefix: str, sub_batch: int) -> tuple[dict, dict, dict]:
        summary = _ingest(s3_client, s3_bucket, ids, prefix=prefix, sub_batch=sub_batch)
        keys = [k for k in _keys(s3_client, s3_bucket) if k.startswith(f"{prefix}/")]
        manifests = [k for k in keys if f"{prefix}/_manifests/" in k]
        reports = [k for k in keys if f"{prefix}/_quality/" in k]
        assert manifests == [summary.manifest_key]
        assert sorted(reports) == sorted(summary.quality_keys) and len(reports) == 2
        assert not [k for k in keys if "/_journal/" in k]  # closed: every sub-batch landed

        def read(key: str) -> dict:
            return json.loads(s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())

        json_key = next(k for k in reports if k.endswith(".json"))
        xcom = summary.to_xcom(s3_bucket)
        for volatile in ("seconds", "manifest_uri", "quality_report_uris"):
            xcom.pop(volatile)
        return xcom, read(summary.manifest_key), read(json_key)

    whole_xcom, whole_manifest, whole_report = land("whole", 1000)
    parts_xcom, parts_manifest, parts_report = land("parts", 4)

    assert parts_xcom == whole_xcom
    assert parts_xcom["published"] and parts_xcom["quarantined"] and parts_xcom["missing"] == 1
    # Every id is named once, in chunk order: verdicts, lake keys, manifest objects.
    assert parts_report["verdicts"] == whole_report["verdicts"]
    assert [v["interview_id"] for v in parts_report["verdicts"]] == dataset.ids
    assert set(parts_report["locations"]) == set(dataset.ids)
    landed = {o["interview_id"] for o in parts_manifest["objects"] if o["kind"] == "interview"}
    assert landed == set(dataset.ids)
    counts = lambda m: {k: v for k, v in m["counts"].items() if k != "bytes"}  # noqa: E731
    assert counts(parts_manifest) == counts(whole_manifest)  # bytes: the reports' timings
    assert parts_manifest["missing"] == ["never-served"]
    # The GX results add up to those of the one run: rows, and each expectation's outcome (its
    # row numbers are those of the tables as checked, sub-batch after sub-batch).
    summary = {k: v for k, v in parts_report["summary"].items() if k != "seconds"}
    assert summary == {k: v for k, v in whole_report["summary"].items() if k != "seconds"}

    def outcomes(report: dict) -> dict:
        return {
            (table, r["expectation_config"]["meta"]["check_id"]): (
                r["success"],
                r["result"].get("element_count"),
                r["result"].get("unexpected_count"),
                len(r["result"].get("unexpected_index_list") or []),
            )
            for table, suite in report["gx_results"].items()
            for r in suite["results"]
        }

    assert outcomes(parts_report) == outcomes(whole_report)
