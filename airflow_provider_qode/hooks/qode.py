"""QodeHook: the ``qode`` connection type, one typed method per API action, retries and assets.

The sync hook serves operators and the CLI; :class:`QodeAsyncClient` fetches many interviews at
once with a bounded number of requests in flight (operators, triggers). Both share the
connection parsing (:mod:`.connection`), retry policy (:mod:`.retry`) and asset rules
(:mod:`.assets`), so they cannot drift apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
from airflow.sdk import BaseHook

from airflow_provider_qode import __version__
from airflow_provider_qode.exceptions import (
    QodeAPIError,
    QodeAssetError,
    QodeAuthError,
    QodeError,
    QodeResponseError,
)
from airflow_provider_qode.hooks.assets import AssetInfo, check_asset_url, resolve_asset_url
from airflow_provider_qode.hooks.connection import EXTRA_FIELDS, QodeConnectionConfig
from airflow_provider_qode.hooks.retry import RetryState
from airflow_provider_qode.models import (
    CreateInterviewRequest,
    CreateInterviewResponse,
    Interview,
    check_interview_id,
    parse_interview,
)

INTERVIEWS_PATH = "/integrations/candidates/interviews"
ASSET_CHUNK_BYTES = 1024 * 1024
MAX_REDIRECTS = 3


def interview_path(interview_id: str) -> str:
    """The get-details path for a checked, path-encoded interview id."""
    return f"{INTERVIEWS_PATH}/{quote(check_interview_id(interview_id), safe='')}"


@dataclass(frozen=True)
class FetchResult:
    """One id of a batch fetch: the raw body, or the typed error that stopped it."""

    interview_id: str
    raw: bytes | None = None
    error: QodeError | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def _auth_headers(config: QodeConnectionConfig) -> dict[str, str]:
    """Sent per request, not as client defaults, so assets on other hosts never see the token."""
    return {"Authorization": f"Bearer {config.token}", "Accept": "application/json"}


def _client_kwargs(config: QodeConnectionConfig) -> dict[str, Any]:
    return {
        "base_url": config.base_url,
        "headers": {"User-Agent": f"airflow-provider-qode/{__version__}"},
        "timeout": httpx.Timeout(config.timeout),
        "follow_redirects": False,
        "trust_env": False,
    }


def _retry_state(config: QodeConnectionConfig, what: str, *, retryable: bool = True) -> RetryState:
    return RetryState(
        what=what,
        max_retries=config.max_retries,
        backoff_base=config.backoff_base,
        backoff_max=config.backoff_max,
        retry_after_max=config.retry_after_max,
        retryable=retryable,
    )


def _check_body_size(response: httpx.Response, limit: int, what: str) -> None:
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        raise QodeResponseError(
            f"{what}: body of {int(length)} bytes is over the {limit}-byte limit",
            raw=b"",
        )


def _capped(chunks: Iterable[bytes], limit: int, what: str) -> bytes:
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise QodeResponseError(
                f"{what}: body is over the {limit}-byte limit (first {limit} bytes kept)",
                raw=bytes(body[:limit]),
            )
    return bytes(body)


def _next_asset_url(response: httpx.Response, url: str, config: QodeConnectionConfig) -> str:
    """The same-host target of an asset redirect; a redirect to another host is refused."""
    location = response.headers.get("Location")
    if not location:
        raise QodeAssetError(f"asset {url!r}: redirect without a Location")
    target = urljoin(url, location)
    if urlsplit(target).hostname != urlsplit(url).hostname:
        raise QodeAssetError(f"asset {url!r}: redirect to another host ({target!r}) refused")
    return check_asset_url(target, config.allowed_asset_hosts)


def _asset_headers(config: QodeConnectionConfig, url: str) -> dict[str, str]:
    """The token goes only to the API's own origin, never to a third-party asset host."""
    api, asset = urlsplit(config.base_url), urlsplit(url)
    if (api.scheme, api.netloc) == (asset.scheme, asset.netloc):
        return _auth_headers(config)
    return {}


@dataclass(frozen=True)
class AssetStream:
    """An asset being downloaded: its checked URL and its chunks (iterate once)."""

    url: str
    content_type: str | None
    chunks: Iterator[bytes]

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks


class QodeHook(BaseHook):
    """Talk to the Qode API through an Airflow connection of type ``qode``.

    :param qode_conn_id: the connection; host = base URL, password = API token.
    """

    conn_name_attr = "qode_conn_id"
    default_conn_name = "qode_default"
    conn_type = "qode"
    hook_name = "Qode"

    def __init__(
        self,
        qode_conn_id: str = default_conn_name,
        *,
        max_concurrency: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.qode_conn_id = qode_conn_id
        self.max_concurrency = max_concurrency
        self._config: QodeConnectionConfig | None = None
        self._client: httpx.Client | None = None

    # --- connection ------------------------------------------------------------------------

    # The connection form lives in the provider info (hooks/connection.py: connection_form).

    @staticmethod
    def _config_from(conn: Any) -> QodeConnectionConfig:
        return QodeConnectionConfig.from_fields(
            host=conn.host,
            schema=conn.schema,
            port=conn.port,
            password=conn.password,
            extra=conn.extra_dejson,
        )

    @property
    def config(self) -> QodeConnectionConfig:
        """The parsed connection, read once per hook."""
        if self._config is None:
            config = self._config_from(self.get_connection(self.qode_conn_id))
            if self.max_concurrency is not None:
                config = dataclasses.replace(config, max_concurrency=self.max_concurrency)
            self._config = config
        return self._config

    @classmethod
    async def aget_config(cls, qode_conn_id: str = default_conn_name) -> QodeConnectionConfig:
        """The parsed connection, read without blocking the event loop (for triggers)."""
        return cls._config_from(await cls.aget_connection(qode_conn_id))

    def get_conn(self) -> httpx.Client:
        """A pooled HTTP client bound to the API base URL, built once per hook."""
        if self._client is None:
            self._client = httpx.Client(**_client_kwargs(self.config))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> QodeHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def async_client(self) -> QodeAsyncClient:
        """An async client on the same connection, for fetching many interviews at once."""
        return QodeAsyncClient(self.config)

    # --- requests --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        retryable: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> bytes:
        headers = headers or {}
        client = self.get_conn()
        state = _retry_state(self.config, what, retryable=retryable)
        while True:
            try:
                with client.stream(
                    method, path, headers={**_auth_headers(self.config), **headers}, **kwargs
                ) as response:
                    _check_body_size(response, self.config.max_body_bytes, what)
                    body = _capped(response.iter_bytes(), self.config.max_body_bytes, what)
                delay = state.after_response(response, body)
                if delay is None:
                    return body
            except httpx.TransportError as exc:
                delay = state.after_error(exc)
            self.log.warning("%s: retrying in %.2fs (attempt %d)", what, delay, state.attempt)
            time.sleep(delay)

    def get_interview_raw(self, interview_id: str) -> bytes:
        """The get-details body exactly as received: what the lake stores byte for byte."""
        path = interview_path(interview_id)
        return self._request("GET", path, f"GET interview {interview_id}")

    def get_interview(self, interview_id: str) -> Interview:
        """The get-details response, parsed; :class:`QodeResponseError` keeps unreadable bytes."""
        return parse_interview(self.get_interview_raw(interview_id), interview_id)

    def create_interview(
        self, request: CreateInterviewRequest | None = None, **fields: Any
    ) -> CreateInterviewResponse:
        """Create an interview session. Not idempotent, so never retried: a failure is raised."""
        body = request or CreateInterviewRequest.model_validate(fields)
        raw = self._request(
            "POST",
            INTERVIEWS_PATH,
            "POST create interview",
            retryable=False,
            content=body.model_dump_json(exclude_none=True).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            return CreateInterviewResponse.model_validate_json(raw)
        except ValueError as exc:
            raise QodeResponseError(
                f"create interview: unreadable response: {exc}", raw=raw
            ) from None

    @contextmanager
    def open_asset(self, reference: str) -> Iterator[AssetStream]:
        """Stream an asset in chunks, after checking its URL, size cap and redirects.

        The chunks can be handed straight to an S3 multipart upload: nothing is held whole.
        """
        config = self.config
        url = resolve_asset_url(reference, config.asset_base_url, config.allowed_asset_hosts)
        client = self.get_conn()
        for _ in range(MAX_REDIRECTS + 1):
            with client.stream("GET", url, headers=_asset_headers(config, url)) as response:
                if response.is_redirect:
                    url = _next_asset_url(response, url, config)
                    continue
                if response.status_code != 200:
                    raise QodeAssetError(f"asset {url!r}: HTTP {response.status_code}")
                chunks = response.iter_bytes(ASSET_CHUNK_BYTES)
                yield AssetStream(
                    url=url,
                    content_type=response.headers.get("Content-Type"),
                    chunks=_limited(chunks, config.max_asset_bytes, url),
                )
                return
        raise QodeAssetError(f"asset {reference!r}: more than {MAX_REDIRECTS} redirects")

    def download_asset(self, reference: str, sink: IO[bytes]) -> AssetInfo:
        """Stream an asset into ``sink`` (a file, a pipe, a buffer) and report size and sha256."""
        digest, size = hashlib.sha256(), 0
        try:
            with self.open_asset(reference) as stream:
                for chunk in stream:
                    digest.update(chunk)
                    size += len(chunk)
                    sink.write(chunk)
        except httpx.TransportError as exc:
            raise QodeAssetError(f"asset {reference!r}: {type(exc).__name__}: {exc}") from exc
        return AssetInfo(stream.url, size, digest.hexdigest(), stream.content_type)

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: reach the API and prove the token is accepted."""
        probe = "connection-test-probe"
        try:
            self.get_interview_raw(probe)
        except QodeAPIError as exc:
            if exc.http_status == 404:
                return True, "Connection successfully tested (API reached, token accepted)"
            return False, str(exc)
        except QodeError as exc:
            return False, str(exc)
        return True, "Connection successfully tested"


def _limited(chunks: Iterable[bytes], limit: int, url: str) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise QodeAssetError(f"asset {url!r}: larger than the {limit}-byte limit")
        yield chunk


class QodeAsyncClient:
    """Async access to the API with at most ``max_concurrency`` requests in flight.

    Use as ``async with QodeAsyncClient(config) as client:``; one client serves a whole batch.
    """

    def __init__(
        self, config: QodeConnectionConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(config.max_concurrency)

    async def __aenter__(self) -> QodeAsyncClient:
        limits = httpx.Limits(
            max_connections=self.config.max_concurrency,
            max_keepalive_connections=self.config.max_concurrency,
        )
        self._client = httpx.AsyncClient(
            **_client_kwargs(self.config), limits=limits, transport=self._transport
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("use QodeAsyncClient inside 'async with'")
        return self._client

    async def _request(self, method: str, path: str, what: str) -> bytes:
        state = _retry_state(self.config, what)
        limit = self.config.max_body_bytes
        while True:
            try:
                headers = _auth_headers(self.config)
                async with (
                    self._slots,
                    self.client.stream(method, path, headers=headers) as response,
                ):
                    _check_body_size(response, limit, what)
                    chunks = bytearray()
                    async for chunk in response.aiter_bytes():
                        chunks += chunk
                        if len(chunks) > limit:
                            break  # _capped raises below, keeping the first `limit` bytes
                    body = _capped([bytes(chunks)], limit, what)
                delay = state.after_response(response, body)
                if delay is None:
                    return body
            except httpx.TransportError as exc:
                delay = state.after_error(exc)
            await asyncio.sleep(delay)

    async def get_interview_raw(self, interview_id: str) -> bytes:
        return await self._request(
            "GET", interview_path(interview_id), f"GET interview {interview_id}"
        )

    async def get_interview(self, interview_id: str) -> Interview:
        return parse_interview(await self.get_interview_raw(interview_id), interview_id)

    async def fetch(self, interview_id: str) -> FetchResult:
        """One id, with every per-id failure captured instead of raised (auth errors excepted)."""
        started = time.perf_counter()
        try:
            raw = await self.get_interview_raw(interview_id)
        except QodeResponseError as exc:
            exc.interview_id = interview_id
            return FetchResult(interview_id, raw=exc.raw, error=exc)
        except QodeError as exc:
            if isinstance(exc, QodeAuthError):
                raise
            return FetchResult(interview_id, error=exc, seconds=time.perf_counter() - started)
        return FetchResult(interview_id, raw=raw, seconds=time.perf_counter() - started)

    async def fetch_many(self, interview_ids: Sequence[str]) -> list[FetchResult]:
        """Fetch every id concurrently (bounded); results in the order of ``interview_ids``.

        A bad token fails the whole batch at once, since no other id could succeed: the
        requests not yet sent are cancelled rather than sent with a refused token.
        """
        tasks = [asyncio.ensure_future(self.fetch(i)) for i in interview_ids]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            await _cancel(tasks)

    async def iter_fetch(self, interview_ids: Sequence[str]) -> AsyncIterator[FetchResult]:
        """Like :meth:`fetch_many`, yielding each result as soon as it arrives."""
        tasks = [asyncio.ensure_future(self.fetch(i)) for i in interview_ids]
        try:
            for done in asyncio.as_completed(tasks):
                yield await done
        finally:
            await _cancel(tasks)


async def _cancel(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel what is still running (after an error, or a consumer that stopped early)."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


@asynccontextmanager
async def qode_async_client(
    qode_conn_id: str = QodeHook.default_conn_name,
) -> AsyncIterator[QodeAsyncClient]:
    """An async client for a connection id, read with async connection access (triggers)."""
    config = await QodeHook.aget_config(qode_conn_id)
    async with QodeAsyncClient(config) as client:
        yield client


__all__ = [
    "EXTRA_FIELDS",
    "AssetStream",
    "FetchResult",
    "QodeAsyncClient",
    "QodeConnectionConfig",
    "QodeHook",
    "interview_path",
    "qode_async_client",
]
