"""S3 answering badly: 503s, 500s, dropped connections, and replies lost after a conditional PUT
took effect (its retry then meets 412). A loopback proxy of the test's own, in front of moto's
server, injects them into a real chunk landing; nothing may be lost or duplicated."""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from airflow_provider_qode.hooks.qode import QodeHook
from airflow_provider_qode.ingest import ingest_chunk
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.sandbox.generator import SandboxDataset
from tests.fixtures.sandbox import point_qode_conn

PREFIX = "lake"
DATASET = SandboxDataset(seed=17, count=16, broken_share=0.25, alias_share=0.0)
FAULTS = ("503", "500", "drop", "lost-reply")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class FaultProxy(ThreadingHTTPServer):
    """Forwards to ``target``; the first attempt of every ``every``-th distinct request fails.

    ``503``/``500``: answered by the proxy, never forwarded. ``drop``: the connection is closed
    before forwarding. ``lost-reply`` (conditional PUTs only): forwarded, so it takes effect,
    and then the connection is closed without the answer.
    """

    daemon_threads = True

    def __init__(self, target: str, every: int = 3) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.target = urlsplit(target)
        self.every = every
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.kinds = itertools.cycle(FAULTS[:3])
        self.injected: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fault_for(self, method: str, path: str, conditional: bool) -> str | None:
        with self.lock:
            key = f"{method} {path}"
            if key in self.seen:
                return None  # a retry: let it through
            self.seen.add(key)
            if len(self.seen) % self.every:
                return None
            kind = "lost-reply" if conditional and method == "PUT" else next(self.kinds)
            self.injected[kind] += 1
            return kind


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        conditional = "If-None-Match" in self.headers or "If-Match" in self.headers
        fault = self.server.fault_for(self.command, self.path, conditional)
        if fault in ("503", "500"):
            payload = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            if fault == "503":
                payload = payload.replace(b"InternalError", b"SlowDown")
            self.send_response(int(fault))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if fault == "drop":
            self.close_connection = True
            return
        target = self.server.target
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        headers["Content-Length"] = str(len(body))
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        if fault == "lost-reply":
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in _HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any


@pytest.fixture
def proxy(atomic_s3_endpoint: str) -> Iterator[FaultProxy]:
    server = FaultProxy(atomic_s3_endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def source(tmp_path: Path, sandbox_factory, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    DATASET.dump(tmp_path)
    server = sandbox_factory(tmp_path)
    point_qode_conn(monkeypatch, server.base_url, max_retries=1, timeout=5)
    return list(DATASET.ids)


def land(endpoint: str, bucket: str, ids: list[str], run_id: str):
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    writer = LakeWriter(
        client, bucket, PREFIX, dag_id="d", run_id=run_id, chunk="chunk-0", run_date="2025-11-30"
    )
    with QodeHook("qode_default") as hook:
        return ingest_chunk(hook, writer, ids)


def test_no_interview_is_lost_or_doubled_through_s3_faults(source, proxy, atomic_s3_endpoint):
    direct = boto3.client("s3", endpoint_url=atomic_s3_endpoint, region_name="us-east-1")
    bucket = "faults-" + format(id(proxy), "x")[-8:]
    direct.create_bucket(Bucket=bucket)

    summary = land(proxy.url, bucket, source, "run-1")
    assert set(proxy.injected) == set(FAULTS), proxy.injected  # every kind happened
    assert summary.failed == {} and summary.missing == []
    assert summary.published + summary.quarantined == len(source) > summary.published > 0

    pages = direct.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    layout = LakeLayout(PREFIX)
    for interview_id in source:
        index = json.loads(
            direct.get_object(Bucket=bucket, Key=layout.index_key(interview_id))["Body"].read()
        )
        copies = [k for k in keys if k.endswith(f"/{interview_id}/interview.json")]
        expected = [index["key"]] if index["state"] == "published" else [index["quarantine"]["key"]]
        assert copies == expected, (interview_id, copies)
        assert index["pending"] == [] and not index["claim"]
    assert not [k for k in keys if "/_journal/" in k or "/_probes/" in k]

    # A rerun through the same faults finds everything in place.
    again = land(proxy.url, bucket, source, "run-2")
    assert (again.published, again.quarantined) == (summary.published, summary.quarantined)
    assert again.unchanged == summary.published
