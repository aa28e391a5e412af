"""The hook against an API that misbehaves on purpose: bombs, echoes, redirects, lies.

A small server of the test's own (tests/fixtures/hostile.py) answers on loopback where the
stand-in cannot script the fault; retries are shown against the stand-in itself. Everything
goes through a real Airflow connection, httpx and a socket.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import zlib
from collections.abc import Sequence
from typing import Any

import pytest

from airflow_provider_qode.exceptions import (
    QodeAPIError,
    QodeAssetError,
    QodeAuthError,
    QodeConnectionError,
    QodeError,
    QodeResponseError,
    QodeServerError,
)
from airflow_provider_qode.hooks.qode import (
    OVERSIZE_KEEP_BYTES,
    FetchResult,
    QodeAsyncClient,
    QodeHook,
)
from airflow_provider_qode.hooks.retry import ERROR_BODY_BYTES
from airflow_provider_qode.sandbox.server import SandboxServer
from tests.fixtures.hostile import HostileServer, Reply, Seen, gzip_bomb, gzipped
from tests.fixtures.sandbox import SANDBOX_TOKEN, point_qode_conn

TOKEN = "qode-live-7f3c9a1e5b2d4f60a8c1e9b7d5f3a1c2"
SIGNATURE = "sig=5ec2e7-signature-4ab1"
MIB = 1024 * 1024


def _conn(monkeypatch: pytest.MonkeyPatch, server: HostileServer, **extra: Any) -> str:
    return point_qode_conn(monkeypatch, server.base_url, "qode_hostile", token=TOKEN, **extra)


def _fetch_many(conn: str, ids: Sequence[str]) -> list[FetchResult]:
    async def run() -> list[FetchResult]:
        async with QodeAsyncClient(QodeHook(conn).config) as client:
            return await client.fetch_many(ids)

    return asyncio.run(run())


def _texts(exc: BaseException) -> list[str]:
    """Everything of an error that could be logged or stored."""
    texts = [str(exc), repr(exc), repr(getattr(exc, "body", b"")), repr(exc.args)]
    cause = exc.__cause__ or exc.__context__
    if cause is not None:
        texts += [str(cause), repr(cause)]
    return texts


def _echo(request: Seen) -> str:
    """What a careless gateway prints: the request's path and its Authorization header."""
    return f"GET {request.path} failed; Authorization: {request.headers.get('Authorization')}"


# --- bounded memory ----------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["sync", "async"])
def test_gzip_bomb_is_cut_at_max_body_bytes_decoded(monkeypatch, client):
    bomb = gzip_bomb(8 * MIB)  # about 8 KB on the wire
    with HostileServer(lambda r: Reply(200, bomb, {"Content-Encoding": "gzip"})) as server:
        conn = _conn(monkeypatch, server, max_body_bytes=MIB)
        if client == "sync":
            with QodeHook(conn) as hook, pytest.raises(QodeResponseError) as info:
                hook.get_interview_raw("bomb")
            error = info.value
        else:
            (result,) = _fetch_many(conn, ["bomb"])
            assert isinstance(result.error, QodeResponseError)
            error = result.error
            assert result.raw == error.raw
            assert error.__traceback__ is None  # no frames (and their buffers) kept alive
        assert len(bomb) < 20_000
        assert f"over the {MIB}-byte limit" in str(error)
        assert error.raw == b"\0" * OVERSIZE_KEEP_BYTES  # the decoded prefix, bounded
        assert len(server.seen) == 1  # a 200 is never retried


def test_gzip_body_within_the_limit_is_decoded_byte_for_byte(monkeypatch):
    body = json.dumps({"interview_id": "z", "role_title": "x" * 50_000}).encode()
    with HostileServer(lambda r: gzipped(body)) as server:
        conn = _conn(monkeypatch, server, max_body_bytes=len(body))
        with QodeHook(conn) as hook:
            assert hook.get_interview_raw("z") == body
        assert _fetch_many(conn, ["z"])[0].raw == body
        assert server.seen[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("headers", "body", "match"),
    [
        ({"Content-Encoding": "br"}, b"\x1b\x00\x00", "unsupported Content-Encoding 'br'"),
        ({"Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00not-really-gzip", "corrupt gzip"),
        ({"Content-Encoding": "deflate"}, zlib.compress(b'{"a": 1}'), None),
    ],
)
def test_content_encodings_are_decoded_or_refused_as_unreadable(monkeypatch, headers, body, match):
    with HostileServer(lambda r: Reply(200, body, headers)) as server:
        conn = _conn(monkeypatch, server)
        (result,) = _fetch_many(conn, ["enc"])
    if match is None:
        assert result.ok and result.raw == b'{"a": 1}'
    else:
        assert isinstance(result.error, QodeResponseError)  # quarantined under QR-PARSE
        assert match in str(result.error)


def test_gzip_bomb_in_a_5xx_body_is_read_only_to_the_error_cap(monkeypatch):
    bomb = gzip_bomb(16 * MIB)
    reply = Reply(503, bomb, {"Content-Encoding": "gzip", "Content-Type": "text/html"})
    with HostileServer(lambda r: reply) as server:
        conn = _conn(monkeypatch, server, max_retries=1)
        (result,) = _fetch_many(conn, ["bomb-503"])
    assert isinstance(result.error, QodeServerError)
    assert len(result.error.body) == ERROR_BODY_BYTES
    assert result.error.__traceback__ is None
    assert len(server.seen) == 2  # retried once, as any 503


def test_content_length_over_the_limit_on_a_5xx_is_still_retried(monkeypatch):
    replies = [Reply(503, b"busy", {"Content-Length": str(10**12)}), Reply(200, b'{"a": 1}')]
    with HostileServer(lambda r: replies.pop(0)) as server:
        conn = _conn(monkeypatch, server, max_body_bytes=1024)
        with QodeHook(conn) as hook:
            assert hook.get_interview_raw("x") == b'{"a": 1}'
        assert len(server.seen) == 2


NESTED = {
    "deep-array": b"[" * 200_000,
    "deep-errors": b'{"errors": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "deep-object": b'{"errors": ' + b'{"a": ' * 30_000 + b"1" + b"}" * 30_001,
}


@pytest.mark.parametrize("name", sorted(NESTED))
def test_deeply_nested_json_error_bodies_are_described_not_raised(monkeypatch, name):
    with HostileServer(lambda r: Reply(500, NESTED[name])) as server:
        conn = _conn(monkeypatch, server, max_retries=0)
        with QodeHook(conn) as hook, pytest.raises(QodeServerError) as info:
            hook.get_interview_raw(name)
        (result,) = _fetch_many(conn, [name])
    assert "HTTP 500: a body of" in str(info.value)
    assert isinstance(result.error, QodeServerError)


# --- nothing secret persisted ------------------------------------------------------------------


def _echoing(request: Seen) -> Reply:
    """Every answer echoes the token: JSON errors, HTML pages, a redirect, asset errors."""
    name = request.path.rsplit("/", 1)[-1].split("?")[0]
    echo = _echo(request)
    token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
    if name in ("json-401", "connection-test-probe"):
        return Reply(401, json.dumps({"status": 401, "errors": [echo, f"token={token}"]}).encode())
    if name == "json-422":
        return Reply(422, json.dumps({"errors": {"token": token, "echo": echo}}).encode())
    if name == "html-500":
        page = f"<html><pre>Authorization: Bearer {token}\n{echo}</pre></html>"
        return Reply(500, page.encode(), {"Content-Type": "text/html"})
    if name == "redirect":
        return Reply(302, b"", {"Location": f"https://login.example/?next=x&token={token}"})
    return Reply(404, json.dumps({"errors": f"no asset {request.path} ({echo})"}).encode())


def test_echoed_token_is_redacted_from_every_error_and_log(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="airflow_provider_qode")  # httpcore's trace is not ours
    with HostileServer(_echoing) as server:
        conn = _conn(monkeypatch, server, max_retries=1)
        errors: list[QodeError] = []
        with QodeHook(conn) as hook:
            for name, error in (
                ("json-422", QodeAPIError),
                ("html-500", QodeServerError),
                ("redirect", QodeAPIError),
                ("json-401", QodeAuthError),
            ):
                with pytest.raises(error) as info:
                    hook.get_interview_raw(name)
                errors.append(info.value)
            with pytest.raises(QodeAssetError) as asset:
                hook.download_asset(f"assets/x.png?{SIGNATURE}", io.BytesIO())
            errors.append(asset.value)
            ok, message = hook.test_connection()
        results = _fetch_many(conn, ["json-422", "html-500", "redirect"])
    assert all(r.error is not None for r in results)
    assert not ok
    # the server did receive the token (so the echo was real), and the texts still lack it
    assert any(TOKEN in s.headers.get("Authorization", "") for s in server.seen)
    texts = [message, caplog.text] + [repr(r) for r in results]
    for exc in errors + [r.error for r in results if r.error]:
        texts += _texts(exc)
    for text in texts:
        assert TOKEN not in text
        assert SIGNATURE not in text
    assert "'token': '***'" in str(errors[0])
    assert "Authorization: ***" in str(errors[1])
    assert "https://login.example/?***" in str(errors[2])
    assert b"Bearer ***" in errors[1].body  # type: ignore[attr-defined]


def test_connection_error_text_is_redacted_too(monkeypatch):
    """A transport error's text passes the same redaction (here: nothing listens)."""
    with HostileServer(lambda r: Reply()) as server:
        base = server.base_url
    point_qode_conn(monkeypatch, base, "qode_gone", token=TOKEN, max_retries=0, timeout=1)
    with QodeHook("qode_gone") as hook, pytest.raises(QodeConnectionError) as info:
        hook.get_interview_raw("x")
    assert TOKEN not in "".join(_texts(info.value))


# --- 3xx on the API path: an error, never a body -------------------------------------------------


def test_redirect_on_the_api_path_fails_the_id_in_a_batch(monkeypatch):
    """docs/operations.md: a 3xx is QodeAPIError, so the id ends in ``failed`` (not parsed)."""
    reply = Reply(301, b"moved", {"Location": f"https://elsewhere.example/v2/x?{SIGNATURE}"})
    with HostileServer(lambda r: reply) as server:
        (result,) = _fetch_many(_conn(monkeypatch, server), ["moved"])
    assert isinstance(result.error, QodeAPIError) and result.error.http_status == 301
    assert not isinstance(result.error, QodeResponseError) and result.raw is None
    assert "redirect to https://elsewhere.example/v2/x?***" in str(result.error)
    assert len(server.seen) == 1  # neither followed nor retried


# --- asset rules -------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _assets(request: Seen) -> Reply:
    path = request.path.split("?")[0]
    if path.endswith("/real.png"):
        return Reply(200, PNG, {"Content-Type": "image/png"})
    if path.endswith("/error-page.png"):
        return Reply(200, b"<html>oops</html>", {"Content-Type": "text/html"})
    if path.endswith("/no-extension"):
        return Reply(200, b"<html>hi</html>", {"Content-Type": "text/html"})
    if path.endswith("/huge.png"):
        return Reply(200, PNG, {"Content-Length": str(10**12), "Content-Type": "image/png"})
    if path.endswith("/bomb.png"):
        headers = {"Content-Encoding": "gzip", "Content-Type": "image/png"}
        return Reply(200, gzip_bomb(4 * MIB), headers)
    return Reply(404, b"{}")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("real.png", "image/png"),
        ("error-page.png", "application/octet-stream"),
        ("no-extension", "application/octet-stream"),
    ],
)
def test_stored_content_type_must_match_the_name(monkeypatch, name, content_type):
    with HostileServer(_assets) as server, QodeHook(_conn(monkeypatch, server)) as hook:
        info = hook.download_asset(f"assets/{name}", io.BytesIO())
    assert info.content_type == content_type


def test_asset_content_length_over_the_cap_is_refused_before_reading(monkeypatch):
    sink = io.BytesIO()
    with HostileServer(_assets) as server:
        hook = QodeHook(_conn(monkeypatch, server, max_asset_bytes=1000))
        with hook, pytest.raises(QodeAssetError, match="Content-Length 1000000000000 is over"):
            hook.download_asset("assets/huge.png", sink)
    assert sink.getvalue() == b""


def test_gzip_asset_is_capped_on_decoded_bytes(monkeypatch):
    sink = io.BytesIO()
    with HostileServer(_assets) as server:
        hook = QodeHook(_conn(monkeypatch, server, max_asset_bytes=MIB))
        with hook, pytest.raises(QodeAssetError, match=f"larger than the {MIB}-byte limit"):
            hook.download_asset("assets/bomb.png", sink)
    assert len(sink.getvalue()) <= MIB


def test_asset_redirect_to_another_port_is_refused(monkeypatch):
    with HostileServer(_assets) as target:
        other = f"http://127.0.0.1:{target.port}/api/v1/assets/real.png"
        with HostileServer(lambda r: Reply(302, b"", {"Location": other})) as server:
            # both ports allowed as hosts: the redirect rule alone must refuse the port change
            allowed = ["127.0.0.1", f"127.0.0.1:{target.port}"]
            with QodeHook(_conn(monkeypatch, server, allowed_asset_hosts=allowed)) as hook:
                with pytest.raises(QodeAssetError, match="another host or port"):
                    hook.download_asset("assets/moved.png", io.BytesIO())
                assert hook.download_asset(other, io.BytesIO()).size == len(PNG)
        assert len(target.seen) == 1  # only the direct download


API_PATH_REFERENCES = [
    "integrations/candidates/interviews/other-interview",
    "./integrations/candidates/interviews/other-interview",
    "%69ntegrations/candidates/interviews/other-interview",
    "INTEGRATIONS/candidates/interviews/other-interview",
    "assets/..%2f..%2fintegrations/candidates/interviews/x",
    "integrations//candidates/interviews/x.png",
    "{base}/integrations/candidates/interviews/other-interview",
    "{base}/assets/../integrations/candidates/interviews/other-interview",
    "{base}//integrations/candidates/interviews/other-interview?x=1",
]


def test_asset_references_to_api_endpoints_are_refused(monkeypatch):
    """Another interview's JSON, fetched with the token, must not land as a screenshot."""
    with HostileServer(_assets) as server:
        with QodeHook(_conn(monkeypatch, server)) as hook:
            for reference in API_PATH_REFERENCES:
                reference = reference.format(base=server.base_url)
                with pytest.raises(QodeAssetError, match=r"API endpoint|leaves") as info:
                    hook.download_asset(reference, io.BytesIO())
                assert "other-interview?" not in str(info.value)
        assert server.seen == []
    target: list[str] = []
    with HostileServer(lambda r: Reply(302, b"", {"Location": target[0]})) as bouncer:
        target.append(f"{bouncer.base_url}/integrations/candidates/interviews/y")
        hook = QodeHook(_conn(monkeypatch, bouncer))
        with hook, pytest.raises(QodeAssetError, match="API endpoint"):
            hook.download_asset("assets/bounce.png", io.BytesIO())
        assert len(bouncer.seen) == 1  # the redirect target was never requested


MALFORMED = [
    "http://[::1/x.png",
    "http://127.0.0.1:abc/x.png",
    "http://127.0.0.1:99999/x.png",
    "http://\uff11\uff12\uff17.0.0.1/x.png",
    "http://127.0.0.1:\uff18\uff10/x.png",
    "http://127.0.0.1\uff0fx.png",
    "http://exa mple.com/x.png",
]


def test_malformed_asset_urls_are_asset_errors(monkeypatch):
    with HostileServer(_assets) as server:
        with QodeHook(_conn(monkeypatch, server)) as hook:
            for url in MALFORMED:
                with pytest.raises(QodeAssetError):
                    hook.download_asset(url, io.BytesIO())
                with pytest.raises(QodeAssetError), hook.open_asset(url):
                    pass
        assert server.seen == []


# --- retries are logged --------------------------------------------------------------------------


RETRY_SCRIPT = [{"status": 429, "retry_after": 0}, 503, "drop"]


def _assert_retry_lines(messages: list[str], interview_id: str) -> None:
    what = f"GET interview {interview_id}"
    assert len(messages) == 3, messages
    assert messages[0].startswith(f"[Try 1 of 4] {what} failed (HTTP 429); retrying in ")
    assert messages[1].startswith(f"[Try 2 of 4] {what} failed (HTTP 503); retrying in ")
    assert messages[2].startswith(f"[Try 3 of 4] {what} failed (RemoteProtocolError)")
    for message in messages:
        assert SANDBOX_TOKEN not in message


def test_each_async_retry_is_one_warning_with_id_try_and_reason(
    monkeypatch, sandbox_reset: SandboxServer, caplog
):
    caplog.set_level(logging.WARNING, logger="airflow_provider_qode")
    interview_id = sandbox_reset.ids()[0]
    sandbox_reset.script(interview_id, RETRY_SCRIPT)
    conn = point_qode_conn(monkeypatch, sandbox_reset.base_url, "qode_retry", max_retries=3)
    (result,) = _fetch_many(conn, [interview_id])
    assert result.ok
    warnings = [r for r in caplog.records if r.getMessage().startswith("[Try")]
    assert {r.levelno for r in warnings} == {logging.WARNING}
    _assert_retry_lines([r.getMessage() for r in warnings], interview_id)


def test_sync_retries_log_the_same_lines(monkeypatch, sandbox_reset: SandboxServer, capfd):
    """The hook logs through Airflow's own logger (structlog, printed here)."""
    interview_id = sandbox_reset.ids()[0]
    sandbox_reset.script(interview_id, RETRY_SCRIPT)
    conn = point_qode_conn(monkeypatch, sandbox_reset.base_url, "qode_retry", max_retries=3)
    with QodeHook(conn) as hook:
        assert hook.get_interview_raw(interview_id)
    out, err = capfd.readouterr()
    lines = [line for line in (out + err).splitlines() if "[Try " in line]
    assert all("warning" in line.lower() for line in lines)
    _assert_retry_lines([line[line.index("[Try ") :] for line in lines], interview_id)


def test_gzip_error_page_from_gzipped_helper_parses(monkeypatch):
    """An error answer compressed by the gateway still yields the API's own words."""
    body = json.dumps({"status": 422, "errors": ["email is required"]}).encode()
    with HostileServer(lambda r: gzipped(body, status=422)) as server:
        hook = QodeHook(_conn(monkeypatch, server))
        with hook, pytest.raises(QodeAPIError, match="email is required"):
            hook.get_interview_raw("x")
