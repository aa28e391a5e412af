"""A chunk landed from a hostile API into the real moto S3 server: where each id ends, and that
nothing secret reaches the lake (manifest, reasons, quality report)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_qode.hooks.qode import OVERSIZE_KEEP_BYTES, QodeHook
from airflow_provider_qode.ingest import ingest_chunk
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.sandbox.generator import SandboxDataset
from tests.fixtures.hostile import HostileServer, Reply, Seen, gzip_bomb
from tests.fixtures.sandbox import point_qode_conn

PREFIX = "lake"
TOKEN = "qode-live-0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a"
SIGNATURE = "X-Sig=ab12cd34ef56-signature"
DATASET = SandboxDataset(seed=11, count=6, broken_share=0.0, alias_share=0.0)
MIB = 1024 * 1024


def _with_screenshot(interview_id: str, reference: str) -> bytes:
    doc = json.loads(DATASET.body(interview_id))
    doc["identity_screenshot_path"] = reference
    return json.dumps(doc).encode()


@pytest.fixture
def hostile_api(monkeypatch: pytest.MonkeyPatch):
    """ids[0] fine, [1] a gzip bomb, [2] a 500 echoing the token, [3] an asset reference to
    another interview's JSON, [4] a malformed asset URL, [5] a signed asset URL that 404s."""
    ids = DATASET.ids
    bodies: dict[str, Any] = {ids[0]: DATASET.body(ids[0])}
    bodies[ids[3]] = _with_screenshot(ids[3], f"integrations/candidates/interviews/{ids[0]}")
    bodies[ids[4]] = _with_screenshot(ids[4], "http://127.0.0.1:abc/x.png")
    bodies[ids[5]] = _with_screenshot(ids[5], f"assets/signed/x.png?{SIGNATURE}")
    bomb = gzip_bomb(40 * MIB)

    def route(request: Seen) -> Reply:
        path = request.path.split("?")[0]
        name = path.rsplit("/", 1)[-1]
        auth = request.headers.get("Authorization", "")
        if path.startswith("/api/v1/assets/identity/"):
            png = DATASET.asset(name.removesuffix(".png"))
            return Reply(200, png, {"Content-Type": "image/png"})
        if name == ids[1]:
            return Reply(200, bomb, {"Content-Encoding": "gzip"})
        if name == ids[2]:
            return Reply(500, json.dumps({"errors": f"upstream refused {auth}"}).encode())
        if name in bodies:
            return Reply(200, bodies[name], {"Content-Type": "application/json"})
        return Reply(404, json.dumps({"errors": f"no {request.path} for {auth}"}).encode())

    with HostileServer(route) as server:
        point_qode_conn(monkeypatch, server.base_url, token=TOKEN, max_retries=0)
        yield server, ids


def _objects(s3_client, bucket: str) -> dict[str, bytes]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    return {k: s3_client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _quarantine(objects: dict[str, bytes], interview_id: str) -> tuple[bytes, dict[str, Any]]:
    index = json.loads(objects[LakeLayout(PREFIX).index_key(interview_id)])
    key = index["quarantine"]["key"]
    return objects[key], json.loads(objects[key.replace("interview.json", "reasons.json")])


def test_hostile_chunk_lands_each_id_once_and_no_secret(hostile_api, s3_client, s3_bucket):
    server, ids = hostile_api
    writer = LakeWriter(
        s3_client, s3_bucket, PREFIX, dag_id="t", run_id="r", chunk="c", run_date="2025-11-30"
    )
    with QodeHook("qode_default") as hook:
        summary = ingest_chunk(hook, writer, ids)

    assert summary.published == 1
    assert summary.quarantined == 4
    assert list(summary.failed) == [ids[2]]
    assert summary.by_rule["QR-PARSE"] == 1 and summary.by_rule["QR-ASSET"] == 3
    objects = _objects(s3_client, s3_bucket)

    raw, reasons = _quarantine(objects, ids[1])  # the bomb: a bounded prefix, decoded
    assert raw == b"\0" * OVERSIZE_KEEP_BYTES
    assert "over the" in json.dumps(reasons)
    for interview_id, words in ((ids[3], "API endpoint"), (ids[4], "malformed")):
        _, reasons = _quarantine(objects, interview_id)
        assert words in json.dumps(reasons), reasons
    _, reasons = _quarantine(objects, ids[5])
    assert "HTTP 404" in json.dumps(reasons)
    # another interview's JSON was never fetched as an asset: one GET of ids[0], its own
    assert sum(s.path.endswith(ids[0]) for s in server.seen) == 1

    manifest = json.loads(objects[summary.manifest_key])
    assert ids[2] in manifest["failed"] and "***" in manifest["failed"][ids[2]]
    written = [objects[summary.manifest_key], *(objects[k] for k in summary.quality_keys)]
    written += [body for key, body in objects.items() if key.endswith("reasons.json")]
    for body in written:
        assert TOKEN.encode() not in body
        assert SIGNATURE.encode() not in body


def test_a_200_page_echoing_the_token_is_quarantined_without_it(
    monkeypatch: pytest.MonkeyPatch, s3_client, s3_bucket
):
    """A gateway answering 200 with an HTML page that echoes the request: QR-PARSE quotes the
    start of the body, and the token must not reach reasons.json or the quality report."""
    fine, echoed = DATASET.ids[:2]

    def route(request: Seen) -> Reply:
        name = request.path.split("?")[0].rsplit("/", 1)[-1]
        if name == echoed:
            auth = request.headers.get("Authorization", "")
            page = f"<html><body>Hello {TOKEN}, your header was {auth}</body></html>"
            return Reply(200, page.encode(), {"Content-Type": "text/html"})
        return Reply(200, DATASET.body(fine), {"Content-Type": "application/json"})

    with HostileServer(route) as server:
        point_qode_conn(monkeypatch, server.base_url, token=TOKEN, max_retries=0)
        writer = LakeWriter(
            s3_client, s3_bucket, PREFIX, dag_id="t", run_id="r", chunk="c", run_date="2025-11-30"
        )
        with QodeHook("qode_default") as hook:
            summary = ingest_chunk(hook, writer, [fine, echoed])

    assert (summary.published, summary.quarantined) == (1, 1)
    assert summary.by_rule["QR-PARSE"] == 1
    objects = _objects(s3_client, s3_bucket)
    raw, reasons = _quarantine(objects, echoed)
    assert TOKEN.encode() in raw  # the raw bytes stay as received, the texts do not
    assert "QR-PARSE" in reasons["failed_rules"] and "***" in json.dumps(reasons)
    for key in (*summary.quality_keys, summary.manifest_key):
        assert TOKEN.encode() not in objects[key]
    assert TOKEN.encode() not in json.dumps(reasons).encode()
