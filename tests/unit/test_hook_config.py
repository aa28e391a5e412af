"""Connection parsing, the retry policy and asset URL rules: pure functions, no servers."""

from __future__ import annotations

import email.utils
import random
import time

import httpx
import pytest

from airflow_provider_qode.exceptions import (
    QodeAPIError,
    QodeAssetError,
    QodeAuthError,
    QodeConfigError,
    QodeConnectionError,
    QodeNotFoundError,
    QodeRateLimitError,
    QodeServerError,
)
from airflow_provider_qode.hooks.assets import resolve_asset_url
from airflow_provider_qode.hooks.connection import (
    DEFAULT_BASE_URL,
    EXTRA_FIELDS,
    QodeConnectionConfig,
)
from airflow_provider_qode.hooks.retry import RetryState, parse_retry_after


def test_full_url_in_host_is_the_base_url():
    config = QodeConnectionConfig.from_fields(
        host="https://qode.example.com/api/v1/", password="tok", extra={"timeout": "7"}
    )
    assert config.base_url == "https://qode.example.com/api/v1"
    assert config.timeout == 7.0
    assert config.asset_base_url == config.base_url
    assert config.allowed_asset_hosts == frozenset({"qode.example.com"})


def test_config_defaults_are_the_extras_table_defaults():
    """One source of truth: the form shows the defaults the parser applies."""
    config = QodeConnectionConfig.from_fields(host="https://x.io")
    for key, field in EXTRA_FIELDS.items():
        if field.default is not None:
            assert getattr(config, key) == field.default, key


def test_extras_as_the_ui_form_saves_them():
    """Airflow 3.3's form saves every field: unset ones as null, lists as JSON lists."""
    extra = {key: field.default for key, field in EXTRA_FIELDS.items()}
    extra.update(max_concurrency=8, allowed_asset_hosts=["127.0.0.1"], asset_base_url=None)
    config = QodeConnectionConfig.from_fields(host="http://127.0.0.1:8080/api/v1", extra=extra)
    assert config.max_concurrency == 8
    assert config.allowed_asset_hosts == frozenset({"127.0.0.1"})
    assert config.asset_base_url == "http://127.0.0.1:8080/api/v1"
    assert config.max_asset_bytes == 2 * 1024**3


def test_bare_host_gets_scheme_port_and_default_path():
    config = QodeConnectionConfig.from_fields(host="127.0.0.1", schema="http", port=8080)
    assert config.base_url == "http://127.0.0.1:8080/api/v1"


def test_empty_host_means_the_public_api():
    assert QodeConnectionConfig.from_fields(host=None).base_url == DEFAULT_BASE_URL


def test_allowed_asset_hosts_from_comma_list_or_json_list():
    a = QodeConnectionConfig.from_fields(
        host="https://x.io", extra={"allowed_asset_hosts": "cdn.x.io, x.io"}
    )
    b = QodeConnectionConfig.from_fields(
        host="https://x.io", extra={"allowed_asset_hosts": ["cdn.x.io", "x.io"]}
    )
    assert a.allowed_asset_hosts == b.allowed_asset_hosts == frozenset({"cdn.x.io", "x.io"})


@pytest.mark.parametrize(
    ("host", "extra", "match"),
    [
        ("http://qode.example.com", {}, "https"),
        ("ftp://qode.example.com", {}, "not an http"),
        ("https://x.io", {"timeout": "soon"}, "timeout"),
        ("https://x.io", {"max_concurency": 3}, "unknown extras"),
        ("https://x.io", {"max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_bad_connections_are_refused_clearly(host: str, extra: dict, match: str):
    with pytest.raises(QodeConfigError, match=match):
        QodeConnectionConfig.from_fields(host=host, extra=extra)


def test_token_is_not_in_repr():
    config = QodeConnectionConfig.from_fields(host="https://x.io", password="s3cr3t-token")
    assert "s3cr3t-token" not in repr(config)


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-1") == 0.0
    now = time.time()
    date = email.utils.formatdate(now + 10, usegmt=True)
    assert 8.0 <= parse_retry_after(date, now=now) <= 10.5  # type: ignore[operator]
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def _response(status: int, body: bytes = b"", headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, content=body, headers=headers)


def _state(**kw) -> RetryState:
    base = dict(
        what="GET x",
        max_retries=2,
        backoff_base=1.0,
        backoff_max=8.0,
        retry_after_max=5.0,
        rng=random.Random(1),
    )
    base.update(kw)
    return RetryState(**base)  # type: ignore[arg-type]


def test_success_is_final():
    assert _state().after_response(_response(200), b"{}") is None


def test_401_raises_auth_at_once_with_api_words():
    with pytest.raises(QodeAuthError, match="bad token") as info:
        _state().after_response(_response(401), b'{"status": 401, "errors": "bad token"}')
    assert info.value.http_status == 401


def test_404_is_not_found():
    with pytest.raises(QodeNotFoundError):
        _state().after_response(_response(404), b'{"status":404,"errors":["no such interview"]}')


def test_429_waits_retry_after_capped_then_gives_up():
    state = _state()
    assert state.after_response(_response(429, headers={"Retry-After": "2"}), b"") == 2.0
    assert state.after_response(_response(429, headers={"Retry-After": "60"}), b"") == 5.0
    with pytest.raises(QodeRateLimitError, match="after 3 attempts"):
        state.after_response(_response(429), b"")


def test_5xx_backs_off_exponentially_with_jitter_then_gives_up():
    state = _state(max_retries=3)
    waits = [state.after_response(_response(503), b"<html>busy</html>") for _ in range(3)]
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 2.0 <= waits[2] <= 4.0
    with pytest.raises(QodeServerError, match="HTML page"):
        state.after_response(_response(503), b"<html>busy</html>")


def test_other_4xx_is_final():
    with pytest.raises(QodeAPIError) as info:
        _state().after_response(_response(422), b'{"errors": ["email is required"]}')
    assert info.value.http_status == 422 and "email is required" in str(info.value)


def test_transport_errors_retry_then_raise_connection_error():
    state = _state(max_retries=1)
    assert state.after_error(httpx.ConnectError("refused")) > 0
    with pytest.raises(QodeConnectionError, match="ConnectError"):
        state.after_error(httpx.ConnectError("refused"))


def test_not_retryable_call_raises_on_first_5xx():
    with pytest.raises(QodeServerError):
        _state(retryable=False).after_response(_response(500), b"")


ALLOWED = frozenset({"api.qode.io", "127.0.0.1", "127.0.0.1:9"})


@pytest.mark.parametrize(
    ("reference", "url"),
    [
        ("assets/identity/a_b.png", "https://api.qode.io/api/v1/assets/identity/a_b.png"),
        ("https://api.qode.io/x/y.png", "https://api.qode.io/x/y.png"),
        ("http://127.0.0.1:9/a.png", "http://127.0.0.1:9/a.png"),
        ("assets/with space.png", "https://api.qode.io/api/v1/assets/with%20space.png"),
    ],
)
def test_asset_references_resolve(reference: str, url: str):
    assert resolve_asset_url(reference, "https://api.qode.io/api/v1", ALLOWED) == url


@pytest.mark.parametrize(
    ("reference", "match"),
    [
        ("https://evil.example.com/a.png", "not in the allowed"),
        ("http://api.qode.io/a.png", "plain http"),
        ("file:///etc/passwd", "scheme"),
        ("//evil.example.com/a.png", "scheme"),
        ("../../secrets", "leaves"),
        ("/etc/passwd", "leaves"),
        ("assets/%2e%2e/%2e%2e/x", "leaves"),
        ("https://user:pw@api.qode.io/a.png", "credentials"),
        ("assets\\..\\x", "backslash"),
        ("a\x00b", "control"),
        ("", "empty"),
        ("gopher://api.qode.io/", "scheme"),
        ("http://127.0.0.1:10/a.png", "127.0.0.1:10 is not in the allowed"),
        ("https://api.qode.io:8443/a.png", "api.qode.io:8443 is not in the allowed"),
        ("http://[::1/x.png", "malformed"),
        ("http://127.0.0.1:abc/x.png", "malformed"),
        ("http://127.0.0.1:99999/x.png", "malformed"),
        ("http://\uff11\uff12\uff17.0.0.1/x.png", "malformed"),
        ("http://127.0.0.1:\uff18\uff10/x.png", "malformed"),
        ("https://\uff41pi.qode.io/x.png", "malformed"),
    ],
)
def test_hostile_asset_references_are_refused(reference: str, match: str):
    with pytest.raises(QodeAssetError, match=match):
        resolve_asset_url(reference, "https://api.qode.io/api/v1", ALLOWED)


def test_a_redirect_from_the_api_is_an_error_not_an_answer():
    response = _response(302, headers={"Location": "https://elsewhere.example/x"})
    with pytest.raises(QodeAPIError, match=r"redirect to https://elsewhere\.example/x"):
        _state().after_response(response, b"<html>moved</html>")


def test_relative_asset_keeps_its_signed_query():
    url = resolve_asset_url("assets/a.png?sig=abc&exp=1", "https://api.qode.io/api/v1", ALLOWED)
    assert url == "https://api.qode.io/api/v1/assets/a.png?sig=abc&exp=1"


def test_allowed_hosts_compare_without_case():
    config = QodeConnectionConfig.from_fields(
        host="https://x.io", extra={"allowed_asset_hosts": ["CDN.X.io"]}
    )
    assert config.allowed_asset_hosts == frozenset({"cdn.x.io"})
    assert (
        resolve_asset_url(
            "https://cdn.x.io/a.png", config.asset_base_url, config.allowed_asset_hosts
        )
        == "https://cdn.x.io/a.png"
    )
