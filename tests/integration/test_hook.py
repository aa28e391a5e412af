"""QodeHook and QodeAsyncClient against the stand-in server over real HTTP.

Nothing of ours is mocked: every call goes through a real Airflow connection (an
``AIRFLOW_CONN_*`` environment variable), httpx and a socket to the sandbox, and the tests count
what the server saw through its admin ``stats()``. Where the sandbox cannot script a fault (it
has no fault script for the create call, nor redirects on the API path) the tests' hostile
loopback server (``tests/fixtures/hostile.py``) answers from a script instead.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import io
import json
import logging
import math
import secrets
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from airflow_provider_qode.exceptions import (
    QodeAPIError,
    QodeAssetError,
    QodeAuthError,
    QodeConnectionError,
    QodeError,
    QodeInvalidIdError,
    QodeNotFoundError,
    QodeRateLimitError,
    QodeResponseError,
    QodeServerError,
)
from airflow_provider_qode.hooks.qode import (
    FetchResult,
    QodeAsyncClient,
    QodeHook,
    qode_async_client,
)
from airflow_provider_qode.models import (
    CreateInterviewRequest,
    CreateInterviewResponse,
    Interview,
    parse_interview,
)
from airflow_provider_qode.sandbox.airflow_stack import free_port
from airflow_provider_qode.sandbox.generator import SandboxDataset, blob_sha256
from airflow_provider_qode.sandbox.server import SandboxServer
from tests.fixtures.hostile import HostileServer, Reply, Seen
from tests.fixtures.sandbox import SANDBOX_TOKEN, point_qode_conn

DETAILS_LABEL = "GET /integrations/candidates/interviews/{interview_id}"
CREATE_LABEL = "POST /integrations/candidates/interviews"
RETRY_AFTER_ZERO = {"status": 429, "retry_after": 0}


# --- helpers ---------------------------------------------------------------------------------


def _set_conn(
    monkeypatch: pytest.MonkeyPatch, base_url: str, conn_id: str = "qode_test", **kw: Any
) -> str:
    return point_qode_conn(monkeypatch, base_url, conn_id, **kw)


def _published(dataset: SandboxDataset, n: int) -> list[str]:
    """The first ``n`` ids whose bodies parse as interviews."""
    ids = []
    for interview_id in dataset.ids:
        try:
            parse_interview(dataset.body(interview_id), interview_id)
        except QodeResponseError:
            continue
        ids.append(interview_id)
        if len(ids) == n:
            return ids
    raise AssertionError("the dataset has too few readable interviews")


def _requests_for(server: SandboxServer, interview_id: str) -> int:
    return int(server.stats()["by_id"].get(interview_id, 0))


@pytest.fixture
def good_id(sandbox_dataset: SandboxDataset) -> str:
    return _published(sandbox_dataset, 1)[0]


@pytest.fixture
def hook(sandbox_reset: SandboxServer, qode_conn_env: str) -> Iterator[QodeHook]:
    """A hook on ``qode_default`` (max_retries 3, backoff 0.01 s) with zeroed server counters."""
    with QodeHook(qode_conn_env) as h:
        yield h


class _ScriptedServer(HostileServer):
    """The hostile loopback server answering each request from a list of outcomes.

    An outcome is ``(status, headers, body)`` or ``"drop"`` (close without answering); past the
    list, 500. It stands in where the sandbox cannot script a fault (the create call, redirects
    on the API path).
    """

    def __init__(self, outcomes: Sequence[object]) -> None:
        pending = list(outcomes)

        def route(request: Seen) -> Reply:
            outcome = pending.pop(0) if pending else (500, {}, b"")
            if outcome == "drop":
                return Reply(drop=True)
            assert isinstance(outcome, tuple)
            status, headers, body = outcome
            return Reply(status, body, dict(headers))

        super().__init__(route)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of each request, in order."""
        return [(request.method, request.path) for request in self.seen]


class _CountingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that records how many requests wait for an answer at once.

    Its own pool is wide (100), so the bound it observes is the client's, not the pool's.
    """

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=100))
        self.in_flight = 0
        self.max_in_flight = 0
        self.seen = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- success ---------------------------------------------------------------------------------


def test_connection_is_read_from_the_airflow_env_var(sandbox, qode_conn_env):
    hook = QodeHook(qode_conn_env)
    config = hook.config
    assert config.base_url == sandbox.base_url
    assert config.token == SANDBOX_TOKEN
    assert (config.max_retries, config.backoff_base, config.timeout) == (3, 0.01, 5.0)
    assert config.max_concurrency == 8
    assert config.allowed_asset_hosts == frozenset({"127.0.0.1"})
    assert QodeHook(qode_conn_env, max_concurrency=2).config.max_concurrency == 2


def test_raw_body_is_byte_for_byte_and_parses(hook, sandbox_reset, sandbox_dataset):
    ids = _published(sandbox_dataset, 3)
    for interview_id in ids:
        raw = hook.get_interview_raw(interview_id)
        assert raw == sandbox_dataset.body(interview_id)
        interview = hook.get_interview(interview_id)
        assert isinstance(interview, Interview)
        assert interview.interview_id == interview_id
        assert interview.candidate_email == sandbox_dataset.document(interview_id).get(
            "candidate_email"
        )
    stats = sandbox_reset.stats()
    assert stats["total"] == 6
    assert stats["by_id"] == {i: 2 for i in ids}


def test_every_dataset_body_is_landed_unchanged(hook, sandbox_dataset):
    """Broken documents included: the raw path never judges a 200 body."""
    for interview_id in sandbox_dataset.ids:
        assert hook.get_interview_raw(interview_id) == sandbox_dataset.body(interview_id)


def test_ids_with_url_characters_are_path_encoded_and_arrive_intact(hook, sandbox_reset):
    odd = ["a%2Fb", "a?b=1", "a#frag", "caf\u00e9", "a%b", "~x", "a;b", "a+b"]
    for interview_id in odd:
        with pytest.raises(QodeNotFoundError):
            hook.get_interview_raw(interview_id)
    assert sandbox_reset.stats()["by_id"] == {i: 1 for i in odd}


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "requests"),
    [
        pytest.param([503], 2, id="503-html"),
        pytest.param([500], 2, id="500-json"),
        pytest.param([502, 504], 3, id="502-504"),
        pytest.param(["drop"], 2, id="dropped-connection"),
        pytest.param([RETRY_AFTER_ZERO], 2, id="429-retry-after-0"),
        pytest.param([503, 500, "drop"], 4, id="three-faults-within-max-retries"),
        pytest.param(["slow"], 1, id="slow-body"),
        pytest.param([200, 503], 1, id="later-fault-unused"),
    ],
)
def test_retryable_faults_are_retried_until_success(
    hook, sandbox_reset, sandbox_dataset, good_id, script, requests
):
    sandbox_reset.script(good_id, script)
    assert hook.get_interview_raw(good_id) == sandbox_dataset.body(good_id)
    assert _requests_for(sandbox_reset, good_id) == requests


def test_retry_after_in_seconds_is_honoured(hook, sandbox_reset, sandbox_dataset, good_id):
    sandbox_reset.script(good_id, [{"status": 429, "retry_after": 1}])
    started = time.monotonic()
    assert hook.get_interview_raw(good_id) == sandbox_dataset.body(good_id)
    # backoff_base is 0.01 s: only the header can explain a wait of a second
    assert time.monotonic() - started >= 0.9
    assert _requests_for(sandbox_reset, good_id) == 2


def test_retry_after_as_http_date_is_honoured(hook, sandbox_reset, sandbox_dataset, good_id):
    # HTTP-dates have whole seconds: the next whole second at least 0.5 s ahead
    when = email.utils.formatdate(math.ceil(time.time() + 0.5), usegmt=True)
    sandbox_reset.script(good_id, [{"status": 429, "retry_after": when}])
    started = time.monotonic()
    assert hook.get_interview_raw(good_id) == sandbox_dataset.body(good_id)
    # backoff_base is 0.01 s: only the header can explain a wait this long
    assert 0.4 <= time.monotonic() - started < 10
    assert _requests_for(sandbox_reset, good_id) == 2


@pytest.mark.parametrize("retry_after", ["+30", 30], ids=["http-date", "seconds"])
def test_retry_after_is_capped_by_retry_after_max(
    monkeypatch, sandbox_reset, sandbox_dataset, good_id, retry_after
):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, retry_after_max=0.2)
    sandbox_reset.script(good_id, [{"status": 429, "retry_after": retry_after}])
    started = time.monotonic()
    with QodeHook(conn) as hook:
        assert hook.get_interview_raw(good_id) == sandbox_dataset.body(good_id)
    assert 0.15 <= time.monotonic() - started < 5
    assert _requests_for(sandbox_reset, good_id) == 2


def test_slow_body_within_the_read_timeout_succeeds(
    monkeypatch, sandbox_reset, sandbox_dataset, good_id
):
    """8 pieces 50 ms apart take 0.4 s in all: the timeout is per read, not per body."""
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, timeout=0.3, max_retries=0)
    sandbox_reset.script(good_id, ["slow"])
    with QodeHook(conn) as hook:
        assert hook.get_interview_raw(good_id) == sandbox_dataset.body(good_id)
    assert _requests_for(sandbox_reset, good_id) == 1


def test_hang_times_out_and_is_retried(monkeypatch, sandbox_reset, sandbox_dataset, good_id):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, timeout=0.5)
    sandbox_reset.script(good_id, ["hang"])
    started = time.monotonic()
    with QodeHook(conn) as hook:
        assert hook.get_interview_raw(good_id) == sandbox_dataset.body(good_id)
    assert 0.45 <= time.monotonic() - started < 5
    assert _requests_for(sandbox_reset, good_id) == 2


def test_hang_every_time_raises_connection_error(monkeypatch, sandbox_reset, good_id):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, timeout=0.3, max_retries=1)
    sandbox_reset.script(good_id, ["hang", "hang"])
    with QodeHook(conn) as hook, pytest.raises(QodeConnectionError) as info:
        hook.get_interview_raw(good_id)
    assert "Timeout" in str(info.value)
    assert "after 2 attempts" in str(info.value)
    assert _requests_for(sandbox_reset, good_id) == 2


@pytest.mark.parametrize(
    ("fault", "error", "status", "detail"),
    [
        pytest.param(503, QodeServerError, 503, "HTML page", id="503"),
        pytest.param(500, QodeServerError, 500, "Internal Server Error", id="500"),
        pytest.param(RETRY_AFTER_ZERO, QodeRateLimitError, 429, "Too Many Requests", id="429"),
        pytest.param("drop", QodeConnectionError, None, "", id="drop"),
    ],
)
def test_retries_spent_raise_typed_error_with_attempt_count(
    hook, sandbox_reset, good_id, fault, error, status, detail
):
    sandbox_reset.script(good_id, [fault] * 4)  # max_retries 3: four attempts in all
    with pytest.raises(error) as info:
        hook.get_interview_raw(good_id)
    assert "after 4 attempts" in str(info.value)
    assert detail in str(info.value)
    assert getattr(info.value, "http_status", None) == status
    assert _requests_for(sandbox_reset, good_id) == 4
    assert sandbox_reset.stats()["total"] == 4


def test_max_retries_zero_means_one_request(monkeypatch, sandbox_reset, good_id):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, max_retries=0)
    sandbox_reset.script(good_id, [503])
    with QodeHook(conn) as hook, pytest.raises(QodeServerError, match="after 1 attempts"):
        hook.get_interview_raw(good_id)
    assert _requests_for(sandbox_reset, good_id) == 1


# --- errors that are never retried -------------------------------------------------------------


def test_wrong_token_is_401_and_never_retried(monkeypatch, sandbox_reset, good_id):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, token="not-the-token")
    with QodeHook(conn) as hook, pytest.raises(QodeAuthError) as info:
        hook.get_interview(good_id)
    assert info.value.http_status == 401
    assert "token" in str(info.value)
    assert sandbox_reset.stats()["total"] == 1


@pytest.mark.parametrize(
    ("status", "error"), [(401, QodeAuthError), (403, QodeAuthError), (422, QodeAPIError)]
)
def test_scripted_client_errors_are_not_retried(hook, sandbox_reset, good_id, status, error):
    sandbox_reset.script(good_id, [status, 200])
    with pytest.raises(error) as info:
        hook.get_interview_raw(good_id)
    assert type(info.value) is error
    assert info.value.http_status == status
    assert _requests_for(sandbox_reset, good_id) == 1


def test_unknown_interview_is_404_and_not_retried(hook, sandbox_reset):
    with pytest.raises(QodeNotFoundError) as info:
        hook.get_interview("no-such-interview")
    assert info.value.http_status == 404
    assert json.loads(info.value.body) == {"status": 404, "errors": "Interview not found"}
    assert "Interview not found" in str(info.value)
    assert sandbox_reset.stats()["by_id"] == {"no-such-interview": 1}


@pytest.mark.parametrize(
    ("status", "location"),
    [(302, "/elsewhere"), (301, "https://turing.gomu.ai/api/v1/x"), (304, None)],
)
def test_redirect_on_the_api_path_is_an_error_not_a_body(monkeypatch, status, location):
    headers = {"Location": location} if location else {}
    with _ScriptedServer([(status, headers, b"")]) as server:
        conn = _set_conn(monkeypatch, server.base_url)
        with QodeHook(conn) as hook, pytest.raises(QodeAPIError) as info:
            hook.get_interview_raw("some-id")
        assert info.value.http_status == status
        assert len(server.requests) == 1


# --- unreadable bodies ---------------------------------------------------------------------------

UNREADABLE: dict[str, bytes] = {
    "html-page": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "truncated": b'{"interview_id": "truncated", "summary": {"skill_summ',
    "json-array": b'[{"interview_id": "json-array"}]',
    "json-string": b'"just a string"',
    "wrong-type": b'{"interview_id": "wrong-type", "aggregated_score": "high"}',
    "empty": b"",
    "not-utf8": b'{"role_title": "\xff\xfe\xfd"}',
}


@pytest.fixture(scope="module")
def _replay_server(tmp_path_factory, sandbox_dataset) -> Iterator[SandboxServer]:
    directory = tmp_path_factory.mktemp("replay")
    for name, body in UNREADABLE.items():
        (directory / f"{name}.json").write_bytes(body)
    good = _published(sandbox_dataset, 1)[0]
    (directory / "good.json").write_bytes(sandbox_dataset.body(good))
    (directory / "huge.json").write_bytes(b'{"role_title": "' + b"x" * 9984 + b'"}')
    (directory / "at-limit.json").write_bytes(b'{"role_title": "' + b"y" * 4078 + b'"}')
    with SandboxServer(directory, token=SANDBOX_TOKEN) as server:
        yield server


@pytest.fixture
def replay_server(_replay_server: SandboxServer) -> SandboxServer:
    """A replay-directory sandbox (``<id>.json`` served byte for byte), counters zeroed."""
    _replay_server.reset()
    return _replay_server


def test_unreadable_bodies_are_kept_raw(monkeypatch, replay_server):
    conn = _set_conn(monkeypatch, replay_server.base_url)
    with QodeHook(conn) as hook:
        for name, body in UNREADABLE.items():
            assert hook.get_interview_raw(name) == body, name
            with pytest.raises(QodeResponseError) as info:
                hook.get_interview(name)
            assert info.value.raw == body, name
            assert info.value.interview_id == name
    # a 200 is never retried, whatever its body
    assert replay_server.stats()["by_id"] == {name: 2 for name in UNREADABLE}


def test_replayed_good_body_parses(monkeypatch, replay_server, sandbox_dataset, good_id):
    conn = _set_conn(monkeypatch, replay_server.base_url)
    with QodeHook(conn) as hook:
        assert hook.get_interview_raw("good") == sandbox_dataset.body(good_id)
        assert hook.get_interview("good").interview_id == good_id


def test_truncated_body_from_the_live_server_is_kept(hook, sandbox_reset, sandbox_dataset, good_id):
    body = sandbox_dataset.body(good_id)
    sandbox_reset.script(good_id, ["malformed"])
    with pytest.raises(QodeResponseError) as info:
        hook.get_interview(good_id)
    assert info.value.raw == body[: len(body) // 2]
    assert "not JSON" in str(info.value)
    assert _requests_for(sandbox_reset, good_id) == 1


def test_body_over_max_body_bytes_is_refused(monkeypatch, replay_server):
    conn = _set_conn(monkeypatch, replay_server.base_url, max_body_bytes=4096)
    with QodeHook(conn) as hook:
        with pytest.raises(QodeResponseError) as info:
            hook.get_interview_raw("huge")
        assert "4096-byte limit" in str(info.value)
        assert len(info.value.raw) <= 4096
        assert len(hook.get_interview_raw("at-limit")) == 4096
    assert replay_server.stats()["by_id"] == {"huge": 1, "at-limit": 1}


def test_body_over_max_body_bytes_async(monkeypatch, replay_server):
    conn = _set_conn(monkeypatch, replay_server.base_url, max_body_bytes=4096)
    config = QodeHook(conn).config

    async def run() -> list[FetchResult]:
        async with QodeAsyncClient(config) as client:
            return await client.fetch_many(["huge", "at-limit"])

    huge, at_limit = asyncio.run(run())
    assert isinstance(huge.error, QodeResponseError)
    assert "4096-byte limit" in str(huge.error)
    assert huge.raw is not None and len(huge.raw) <= 4096
    assert at_limit.ok and at_limit.raw is not None and len(at_limit.raw) == 4096


# --- hostile ids -----------------------------------------------------------------------------

HOSTILE_IDS = [
    "../x",
    "a/b",
    "a b",
    "",
    "a\\b",
    "..",
    "a..b",
    "x" * 257,
    "a\tb",
    "a\nb",
    "a\x00b",
    " ",
    "/",
]


def test_hostile_ids_are_refused_before_any_request(hook, sandbox_reset):
    for interview_id in [*HOSTILE_IDS, None, 123]:
        for method in (hook.get_interview_raw, hook.get_interview):
            try:
                method(interview_id)
            except QodeInvalidIdError:
                continue
            pytest.fail(f"{method.__name__}({interview_id!r}) was not refused")
    assert sandbox_reset.stats()["total"] == 0


def test_longest_allowed_id_is_sent(hook, sandbox_reset):
    with pytest.raises(QodeNotFoundError):
        hook.get_interview_raw("x" * 256)
    assert sandbox_reset.stats()["total"] == 1


def test_single_dot_id_is_refused(hook, sandbox_reset):
    with pytest.raises(QodeError) as info:
        hook.get_interview_raw(".")
    assert sandbox_reset.stats()["by_path"] == {}
    assert isinstance(info.value, QodeInvalidIdError)


def test_hostile_ids_in_a_batch_are_results_not_requests(qode_conn_env, sandbox_reset, good_id):
    async def run() -> list[FetchResult]:
        async with qode_async_client(qode_conn_env) as client:
            return await client.fetch_many([*HOSTILE_IDS, good_id])

    *refused, fetched = asyncio.run(run())
    assert [r.interview_id for r in refused] == HOSTILE_IDS
    assert all(isinstance(r.error, QodeInvalidIdError) and r.raw is None for r in refused)
    assert fetched.ok
    assert sandbox_reset.stats()["total"] == 1


# --- the token stays secret ------------------------------------------------------------------


def test_token_never_appears_in_logs_errors_or_config(
    monkeypatch, sandbox_factory, sandbox_dataset, good_id, caplog, capfd
):
    secret = "qode-" + secrets.token_hex(16)
    wrong = "wrong-" + secrets.token_hex(16)
    server = sandbox_factory(sandbox_dataset, token=secret)
    for name in ("", "httpx", "httpcore", "airflow", "airflow.task", "airflow_provider_qode"):
        caplog.set_level(logging.DEBUG, logger=name)
    conn = _set_conn(monkeypatch, server.base_url, "qode_secret", token=secret, max_retries=1)
    bad_conn = _set_conn(monkeypatch, server.base_url, "qode_wrong", token=wrong)
    errors: list[BaseException] = []
    with QodeHook(conn) as hook:
        texts = [repr(hook.config), str(hook.config)]
        assert hook.get_interview_raw(good_id) == sandbox_dataset.body(good_id)
        server.script(good_id, [503])
        hook.get_interview_raw(good_id)  # one retry, logged
        hook.download_asset(f"assets/identity/{good_id}.png", io.BytesIO())
        for script, error in (
            ([503, 503], QodeServerError),
            (["drop", "drop"], QodeConnectionError),
        ):
            server.script(good_id, script)
            with pytest.raises(error) as info:
                hook.get_interview_raw(good_id)
            errors.append(info.value)
        with pytest.raises(QodeNotFoundError) as not_found:
            hook.get_interview_raw("no-such-interview")
        errors.append(not_found.value)
        texts.append(hook.test_connection()[1])
    with QodeHook(bad_conn) as bad:
        with pytest.raises(QodeAuthError) as auth:
            bad.get_interview_raw(good_id)
        errors.append(auth.value)
        ok, message = bad.test_connection()
        assert not ok
        texts += [message, repr(bad.config)]

    async def batch() -> list[FetchResult]:
        async with qode_async_client(conn) as client:
            server.script(good_id, [503, 503])
            return await client.fetch_many([good_id, "no-such-interview"])

    texts += [repr(r) for r in asyncio.run(batch())]
    for exc in errors:
        texts += [str(exc), repr(exc), repr(getattr(exc, "body", b""))]
        texts += [str(exc.__cause__), repr(exc.__cause__)]
    out, err = capfd.readouterr()
    texts += [caplog.text, out, err]
    texts += [repr(record.args) for record in caplog.records]
    assert "retrying" in caplog.text + out + err  # the logs were captured at all
    for text in texts:
        assert secret not in text
        assert wrong not in text
    assert "token=" not in repr(hook.config)


# --- create ----------------------------------------------------------------------------------


def test_create_interview_is_not_idempotent(hook, sandbox_reset):
    created_before = sandbox_reset.stats()["created"]
    first = hook.create_interview(
        email="ada@example.com",
        interview_type="SOFTWARE_ENGINEER",
        role_title="Backend Developer",
        metadata={"req": 42},
    )
    second = hook.create_interview(
        CreateInterviewRequest(email="ada@example.com", interview_type="SOFTWARE_ENGINEER")
    )
    assert isinstance(first, CreateInterviewResponse)
    assert isinstance(second, CreateInterviewResponse)
    assert first.interview_id != second.interview_id
    assert first.email == "ada@example.com"
    assert first.completion_status == "SCHEDULED"
    assert first.talent_id is None
    stats = sandbox_reset.stats()
    assert stats["created"] == created_before + 2
    assert stats["by_path"] == {CREATE_LABEL: 2}
    interview = hook.get_interview(first.interview_id)
    assert interview.interview_id == first.interview_id
    assert interview.request_metadata == {"req": 42}
    assert interview.role_title == "Backend Developer"


def test_create_refused_by_the_model_sends_nothing(hook, sandbox_reset):
    with pytest.raises(ValueError):
        hook.create_interview(email="ada@example.com", interview_type="NOT_A_TYPE")
    with pytest.raises(ValueError):
        hook.create_interview(email="ada@example.com", interview_type="STEM", unknown_field=1)
    assert sandbox_reset.stats()["total"] == 0


def test_create_refused_by_the_server_is_not_retried(hook, sandbox_reset):
    with pytest.raises(QodeAPIError) as info:
        hook.create_interview(email="no-at-sign", interview_type="STEM")
    assert info.value.http_status == 422
    assert "email" in str(info.value)
    assert sandbox_reset.stats()["by_path"] == {CREATE_LABEL: 1}


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        pytest.param((503, {"Content-Type": "text/html"}, b"<html>down</html>"), QodeServerError),
        pytest.param((500, {}, b'{"status": 500, "errors": "boom"}'), QodeServerError),
        pytest.param((429, {"Retry-After": "0"}, b""), QodeRateLimitError),
        pytest.param("drop", QodeConnectionError),
    ],
    ids=["503", "500", "429", "drop"],
)
def test_create_is_never_retried(monkeypatch, outcome, error):
    """The sandbox has no fault script for the create path, so a scripted server answers."""
    ok = (200, {}, b'{"interview_id": "late"}')
    with _ScriptedServer([outcome, ok, ok]) as server:
        conn = _set_conn(monkeypatch, server.base_url)
        with QodeHook(conn) as hook, pytest.raises(error) as info:
            hook.create_interview(email="ada@example.com", interview_type="STEM")
        assert "after 1 attempts" in str(info.value)
        assert server.requests == [("POST", "/api/v1/integrations/candidates/interviews")]


def test_create_with_unreadable_200_keeps_the_raw_body(monkeypatch):
    body = b"<html>maintenance</html>"
    with _ScriptedServer([(200, {"Content-Type": "text/html"}, body)]) as server:
        conn = _set_conn(monkeypatch, server.base_url)
        with QodeHook(conn) as hook, pytest.raises(QodeResponseError) as info:
            hook.create_interview(email="ada@example.com", interview_type="STEM")
    assert info.value.raw == body
    assert len(server.requests) == 1


def test_create_timeout_is_not_retried(monkeypatch, sandbox_factory, sandbox_dataset):
    server = sandbox_factory(sandbox_dataset, latency_ms=800)
    conn = _set_conn(monkeypatch, server.base_url, timeout=0.3)
    with QodeHook(conn) as hook, pytest.raises(QodeConnectionError, match="after 1 attempts"):
        hook.create_interview(email="ada@example.com", interview_type="STEM")
    assert server.stats()["by_path"] == {CREATE_LABEL: 1}


# --- assets ----------------------------------------------------------------------------------


def test_identity_png_downloads_byte_for_byte(hook, sandbox_reset, sandbox_dataset, good_id):
    expected = sandbox_dataset.asset(good_id)
    sink = io.BytesIO()
    info = hook.download_asset(f"assets/identity/{good_id}.png", sink)
    assert sink.getvalue() == expected
    assert expected.startswith(b"\x89PNG")
    assert info.size == len(expected)
    assert info.sha256 == hashlib.sha256(expected).hexdigest()
    assert info.content_type == "image/png"
    assert info.url == f"{sandbox_reset.base_url}/assets/identity/{good_id}.png"
    absolute = io.BytesIO()
    hook.download_asset(info.url, absolute)
    assert absolute.getvalue() == expected
    assert sandbox_reset.stats()["by_path"] == {"GET /assets/identity": 2}


def test_big_blob_streams_into_a_file(hook, tmp_path):
    size = 20 * 1024 * 1024
    target = tmp_path / "blob.bin"
    with target.open("wb") as sink:
        info = hook.download_asset(f"assets/blob/{size}.bin", sink)
    assert info.size == size == target.stat().st_size
    assert info.sha256 == blob_sha256(size)
    digest = hashlib.sha256()
    with target.open("rb") as handle:
        while piece := handle.read(1024 * 1024):
            digest.update(piece)
    assert digest.hexdigest() == info.sha256


def test_asset_over_max_asset_bytes_is_refused(monkeypatch, sandbox_reset):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, max_asset_bytes=100_000)
    with QodeHook(conn) as hook:
        with pytest.raises(QodeAssetError, match="100000-byte limit"):
            hook.download_asset("assets/blob/100001.bin", io.BytesIO())
        sink = io.BytesIO()
        assert hook.download_asset("assets/blob/100000.bin", sink).size == 100_000
        assert len(sink.getvalue()) == 100_000


def test_offsite_redirect_is_refused(hook, sandbox_reset):
    with pytest.raises(QodeAssetError, match="another host"):
        hook.download_asset("assets/redirect-offsite", io.BytesIO())
    assert sandbox_reset.stats()["total"] == 1


def test_onsite_redirect_is_followed(hook, sandbox_reset, sandbox_dataset, good_id):
    sink = io.BytesIO()
    info = hook.download_asset(f"assets/redirect-onsite/identity/{good_id}.png", sink)
    assert sink.getvalue() == sandbox_dataset.asset(good_id)
    assert info.url.endswith(f"/api/v1/assets/identity/{good_id}.png")
    assert sandbox_reset.stats()["by_path"] == {
        "GET /assets/redirect-onsite": 1,
        "GET /assets/identity": 1,
    }


def test_redirect_chain_is_limited(hook, sandbox_reset, sandbox_dataset, good_id):
    three = "assets/" + "redirect-onsite/" * 3 + f"identity/{good_id}.png"
    sink = io.BytesIO()
    hook.download_asset(three, sink)
    assert sink.getvalue() == sandbox_dataset.asset(good_id)
    sandbox_reset.reset()
    with pytest.raises(QodeAssetError, match="more than 3 redirects"):
        hook.download_asset("assets/" + "redirect-onsite/" * 4 + "identity/x.png", io.BytesIO())
    assert sandbox_reset.stats()["total"] == 4


REFUSED_ASSET_REFERENCES = [
    "https://evil.example.com/x.png",
    "//evil.example.com/x.png",
    "http://example.com/x.png",
    "file:///etc/passwd",
    "ftp://127.0.0.1/x.png",
    "http://user:pw@127.0.0.1/x.png",
    "../../etc/passwd",
    "assets/../../x.png",
    "assets/%2e%2e/%2e%2e/x.png",
    "/etc/passwd",
    "assets\\identity\\x.png",
    "assets/x.png\n",
    "",
    "x" * 3000,
]


def test_refused_asset_references_send_nothing(monkeypatch, sandbox_reset):
    conn = _set_conn(
        monkeypatch, sandbox_reset.base_url, allowed_asset_hosts=["127.0.0.1", "example.com"]
    )
    with QodeHook(conn) as hook:
        for reference in REFUSED_ASSET_REFERENCES:
            with pytest.raises(QodeAssetError) as info:
                hook.download_asset(reference, io.BytesIO())
            # refused by the URL checks, not failed on the network or by a server's answer
            assert info.value.__cause__ is None, reference
            assert "HTTP" not in str(info.value), reference
    assert sandbox_reset.stats()["total"] == 0


def test_asset_faults_raise_asset_errors(hook, sandbox_reset, good_id):
    key = f"assets/identity/{good_id}.png"
    sandbox_reset.script(key, [503])
    with pytest.raises(QodeAssetError, match="HTTP 503"):
        hook.download_asset(key, io.BytesIO())
    sandbox_reset.script(key, ["drop"])
    with pytest.raises(QodeAssetError):
        hook.download_asset(key, io.BytesIO())
    with pytest.raises(QodeAssetError, match="HTTP 404"):
        hook.download_asset("assets/identity/no-such-interview.png", io.BytesIO())


@pytest.mark.parametrize(("asset_auth", "succeeds"), [(True, False), (False, True)])
def test_token_is_not_sent_to_another_origin(
    monkeypatch, sandbox, sandbox_factory, sandbox_dataset, good_id, asset_auth, succeeds
):
    """Same host, other port (allowed by ``host:port``): another origin, so no Authorization
    header. A server that demands the token therefore answers 401; one that serves assets
    without auth answers the PNG."""
    other = sandbox_factory(sandbox_dataset, asset_auth=asset_auth)
    allowed = ["127.0.0.1", f"127.0.0.1:{other.port}"]
    conn = _set_conn(monkeypatch, sandbox.base_url, allowed_asset_hosts=allowed)
    url = f"{other.base_url}/assets/identity/{good_id}.png"
    sink = io.BytesIO()
    with QodeHook(conn) as hook:
        if succeeds:
            hook.download_asset(url, sink)
            assert sink.getvalue() == sandbox_dataset.asset(good_id)
        else:
            with pytest.raises(QodeAssetError, match="HTTP 401"):
                hook.download_asset(url, sink)
    assert other.stats()["total"] == 1


def test_asset_on_another_port_of_an_allowed_host_is_refused(hook, sandbox_factory, good_id):
    """A bare allowed host means its default port or the asset base's port, no other."""
    other = sandbox_factory()
    with pytest.raises(QodeAssetError, match=f"127.0.0.1:{other.port} is not in the allowed"):
        hook.download_asset(f"{other.base_url}/assets/identity/{good_id}.png", io.BytesIO())
    assert other.stats()["total"] == 0


# --- test_connection -------------------------------------------------------------------------


def test_test_connection_with_the_right_token(hook, sandbox_reset):
    ok, message = hook.test_connection()
    assert ok is True
    assert "success" in message.lower()
    assert sandbox_reset.stats()["total"] == 1


def test_test_connection_with_a_wrong_token(monkeypatch, sandbox_reset):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, token="wrong-token")
    with QodeHook(conn) as hook:
        ok, message = hook.test_connection()
    assert ok is False
    assert "401" in message
    assert sandbox_reset.stats()["total"] == 1


def test_test_connection_with_nothing_listening(monkeypatch):
    conn = _set_conn(monkeypatch, f"http://127.0.0.1:{free_port()}/api/v1", max_retries=0)
    with QodeHook(conn) as hook:
        ok, message = hook.test_connection()
    assert ok is False
    assert "after 1 attempts" in message


# --- async -----------------------------------------------------------------------------------


def _fetch_many(config: Any, ids: Sequence[str], **kwargs: Any) -> list[FetchResult]:
    async def run() -> list[FetchResult]:
        async with QodeAsyncClient(config, **kwargs) as client:
            return await client.fetch_many(ids)

    return asyncio.run(run())


def test_fetch_many_keeps_order_and_bytes(hook, sandbox_reset, sandbox_dataset):
    ids = sandbox_dataset.ids[:12]
    wanted = [*reversed(ids), "missing-1", ids[0], "missing-2"]
    results = _fetch_many(hook.config, wanted)
    assert [r.interview_id for r in results] == wanted
    for result in results:
        if result.interview_id.startswith("missing"):
            assert not result.ok
            assert isinstance(result.error, QodeNotFoundError)
            assert result.raw is None
        else:
            assert result.ok, result.error
            assert result.raw == sandbox_dataset.body(result.interview_id)
    by_id = sandbox_reset.stats()["by_id"]
    assert by_id == {**{i: 1 for i in ids}, ids[0]: 2, "missing-1": 1, "missing-2": 1}


def test_fetch_many_retries_per_id(hook, sandbox_reset, sandbox_dataset):
    first, second = sandbox_dataset.ids[:2]
    sandbox_reset.script(first, [503, "drop", RETRY_AFTER_ZERO])
    sandbox_reset.script(second, [500] * 4)
    ok, failed = _fetch_many(hook.config, [first, second])
    assert ok.raw == sandbox_dataset.body(first)
    assert isinstance(failed.error, QodeServerError)
    assert "after 4 attempts" in str(failed.error)
    assert sandbox_reset.stats()["by_id"] == {first: 4, second: 4}


def test_async_hang_is_retried(monkeypatch, sandbox_reset, sandbox_dataset, good_id):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, timeout=0.4)
    sandbox_reset.script(good_id, ["hang"])
    (result,) = _fetch_many(QodeHook(conn).config, [good_id])
    assert result.raw == sandbox_dataset.body(good_id)
    assert _requests_for(sandbox_reset, good_id) == 2


def test_iter_fetch_yields_every_result(hook, sandbox_reset, sandbox_dataset):
    ids = sandbox_dataset.ids[:6]

    async def run() -> list[FetchResult]:
        async with QodeAsyncClient(hook.config) as client:
            return [r async for r in client.iter_fetch([*ids, "missing"])]

    results = asyncio.run(run())
    assert sorted(r.interview_id for r in results) == sorted([*ids, "missing"])
    for result in results:
        if result.interview_id != "missing":
            assert result.raw == sandbox_dataset.body(result.interview_id)


def test_fetch_many_with_a_wrong_token_raises(monkeypatch, sandbox_reset, sandbox_dataset):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, token="wrong-token")
    with pytest.raises(QodeAuthError):
        _fetch_many(QodeHook(conn).config, sandbox_dataset.ids[:4])


def test_wrong_token_stops_the_whole_batch(monkeypatch, sandbox_reset, sandbox_dataset):
    conn = _set_conn(monkeypatch, sandbox_reset.base_url, token="wrong-token", max_concurrency=1)
    config = QodeHook(conn).config

    async def run() -> None:
        async with QodeAsyncClient(config) as client:
            with pytest.raises(QodeAuthError):
                await client.fetch_many(sandbox_dataset.ids[:5])
            await asyncio.sleep(0.3)  # time enough for stray fetches to be sent

    asyncio.run(run())
    assert sandbox_reset.stats()["total"] == 1


@pytest.mark.parametrize(("concurrency", "bound"), [(4, 4), (16, 16)])
def test_fetch_many_bounds_requests_in_flight(
    monkeypatch, sandbox_factory, sandbox_dataset, concurrency, bound
):
    latency = 0.2
    server = sandbox_factory(sandbox_dataset, latency_ms=latency * 1000)
    conn = _set_conn(monkeypatch, server.base_url, max_concurrency=concurrency)
    transport = _CountingTransport()
    ids = sandbox_dataset.ids[:16]
    started = time.monotonic()
    results = _fetch_many(QodeHook(conn).config, ids, transport=transport)
    elapsed = time.monotonic() - started
    assert [r.raw for r in results] == [sandbox_dataset.body(i) for i in ids]
    assert transport.seen == 16
    if concurrency == 4:
        assert transport.max_in_flight == bound
        assert elapsed >= 3 * latency  # four rounds of at least `latency` each
    else:
        assert transport.max_in_flight > 4


def test_default_client_is_bounded_too(monkeypatch, sandbox_factory, sandbox_dataset):
    """Without a custom transport (the production path): 16 ids, 4 at a time, 4 rounds."""
    latency = 0.2
    server = sandbox_factory(sandbox_dataset, latency_ms=latency * 1000)
    conn = _set_conn(monkeypatch, server.base_url, max_concurrency=4)
    started = time.monotonic()
    results = _fetch_many(QodeHook(conn).config, sandbox_dataset.ids[:16])
    assert all(r.ok for r in results)
    assert time.monotonic() - started >= 3 * latency
    assert server.stats()["total"] == 16


def test_qode_async_client_reads_the_connection_inside_a_loop(
    qode_conn_env, sandbox, sandbox_reset, sandbox_dataset, good_id
):
    async def run() -> tuple[bytes, Interview, str]:
        async with qode_async_client(qode_conn_env) as client:
            raw = await client.get_interview_raw(good_id)
            interview = await client.get_interview(good_id)
            return raw, interview, client.config.base_url

    raw, interview, base_url = asyncio.run(run())
    assert raw == sandbox_dataset.body(good_id)
    assert interview.interview_id == good_id
    assert base_url == sandbox.base_url
    assert _requests_for(sandbox_reset, good_id) == 2


def test_hook_async_client_shares_the_connection(hook, sandbox_dataset, good_id):
    client = hook.async_client()
    assert client.config is hook.config

    async def run() -> bytes:
        async with client:
            return await client.get_interview_raw(good_id)

    assert asyncio.run(run()) == sandbox_dataset.body(good_id)


def test_async_client_outside_async_with_is_an_error(hook):
    with pytest.raises(RuntimeError, match="async with"):
        _ = hook.async_client().client
