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
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote, urljoin

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
from airflow_provider_qode.hooks.assets import (
    AssetInfo,
    Origin,
    check_asset_url,
    resolve_asset_url,
    shown,
    stored_content_type,
)
from airflow_provider_qode.hooks.body import (
    ACCEPT_ENCODING,
    BodyDecoder,
    BodyDecodingError,
    CappedBuffer,
)
from airflow_provider_qode.hooks.connection import EXTRA_FIELDS, QodeConnectionConfig
from airflow_provider_qode.hooks.redact import Redactor
from airflow_provider_qode.hooks.retry import ERROR_BODY_BYTES, RetryState
from airflow_provider_qode.models import (
    CreateInterviewRequest,
    CreateInterviewResponse,
    Interview,
    check_interview_id,
    parse_interview,
)

INTERVIEWS_PATH = "/integrations/candidates/interviews"
MAX_REDIRECTS = 3
#: How much of a body over ``max_body_bytes`` is kept for quarantine: enough to see what it
#: was, small enough that a chunk full of gzip bombs stays small.
OVERSIZE_KEEP_BYTES = 64 * 1024
#: Bodies up to this size are read with full concurrency; beyond it a body needs one of the
#: async client's large-body slots, of which there are ``LARGE_BODIES_BYTES // max_body_bytes``.
SMALL_BODY_BYTES = 1024 * 1024
LARGE_BODIES_BYTES = 64 * 1024 * 1024


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
        "headers": {
            "User-Agent": f"airflow-provider-qode/{__version__}",
            "Accept-Encoding": ACCEPT_ENCODING,
        },
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
        redactor=Redactor(config.token),
    )


def _announced_length(response: httpx.Response) -> int | None:
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isascii() and length.isdigit() else None


class _BodyReader:
    """One response body, inflated in bounded pieces and cut at the limit for its status.

    A 2xx may be up to ``max_body_bytes`` (decoded); beyond that only the first
    :data:`OVERSIZE_KEEP_BYTES` are kept for quarantine. An error answer is read only as far as
    :data:`ERROR_BODY_BYTES`, enough for its message.
    """

    def __init__(self, response: httpx.Response, config: QodeConnectionConfig, what: str) -> None:
        self.ok = response.is_success
        self.what = what
        self.limit = config.max_body_bytes if self.ok else ERROR_BODY_BYTES
        length = _announced_length(response)
        if self.ok and length is not None and length > self.limit:
            raise QodeResponseError(
                f"{what}: body of {length} bytes is over the {self.limit}-byte limit", raw=b""
            )
        self.problem = ""
        try:
            self.decoder = BodyDecoder(response.headers.get("Content-Encoding"))
        except BodyDecodingError as exc:
            self.decoder, self.problem = BodyDecoder(None), str(exc)
        self.buffer = CappedBuffer(self.limit, keep=OVERSIZE_KEEP_BYTES)

    @property
    def size(self) -> int:
        return self.buffer.size

    @property
    def done(self) -> bool:
        """Nothing more to read: the limit is passed, or the body cannot be decoded."""
        return self.buffer.over or bool(self.problem and self.ok) or self.decoder.failed

    def pieces(self, raw: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next raw chunk (none once :attr:`done`)."""
        if self.done:
            return
        try:
            yield from self.decoder.feed(raw)
        except BodyDecodingError as exc:
            self.problem = str(exc)

    def add(self, piece: bytes) -> bool:
        """Keep a decoded piece; False once the limit is passed."""
        return self.buffer.add(piece)

    def feed(self, raw: bytes) -> bool:
        """Take the next raw chunk whole; False once reading should stop."""
        for piece in self.pieces(raw):
            if not self.add(piece):
                break
        return not self.done

    def body(self) -> bytes:
        """The decoded body; :class:`QodeResponseError` (with a bounded prefix) if unusable."""
        if self.ok and (self.buffer.over or self.problem):
            reason = self.problem or f"body is over the {self.limit}-byte limit"
            raw = self.buffer.value()
            raise QodeResponseError(f"{self.what}: {reason} (first {len(raw)} bytes kept)", raw=raw)
        return self.buffer.value()


def _detached(exc: QodeError) -> QodeError:
    """``exc`` without tracebacks (its own and its causes'): a stored error must not keep the
    frames, and the bodies in them, alive for the rest of the chunk."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return exc


def _next_asset_url(response: httpx.Response, url: str, config: QodeConnectionConfig) -> str:
    """The same-origin target of an asset redirect; another host or port is refused."""
    location = response.headers.get("Location")
    if not location:
        raise QodeAssetError(f"asset {shown(url)}: redirect without a Location")
    try:
        target = urljoin(url, location)
    except ValueError:
        raise QodeAssetError(f"asset {shown(url)}: malformed redirect Location") from None
    if Origin.of(target) != Origin.of(url):
        raise QodeAssetError(
            f"asset {shown(url)}: redirect to another host or port ({shown(target)}) refused"
        )
    return _checked_asset_url(target, config)


def _checked_asset_url(url: str, config: QodeConnectionConfig) -> str:
    return check_asset_url(
        url,
        config.allowed_asset_hosts,
        asset_base_url=config.asset_base_url,
        api_base_url=config.base_url,
    )


def _asset_headers(config: QodeConnectionConfig, url: str) -> dict[str, str]:
    """The token goes only to the API's own origin, never to a third-party asset host."""
    if Origin.of(url) == Origin.of(config.base_url):
        return _auth_headers(config)
    return {}


@dataclass(frozen=True)
class AssetStream:
    """An asset being downloaded: its checked URL and its chunks (iterate once)."""

    url: str
    content_type: str
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
                    reader = _BodyReader(response, self.config, what)
                    for raw in response.iter_raw():
                        if not reader.feed(raw):
                            break
                body = reader.body()
                delay = state.after_response(response, body)
                if delay is None:
                    return body
            except httpx.TransportError as exc:
                delay = state.after_error(exc)
            state.log_retry(self.log, delay)
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
        url = resolve_asset_url(
            reference,
            config.asset_base_url,
            config.allowed_asset_hosts,
            api_base_url=config.base_url,
        )
        response: httpx.Response | None = None
        try:
            for _ in range(MAX_REDIRECTS + 1):
                response = self._send_asset_request(url)
                if response.is_redirect:
                    response.close()
                    url = _next_asset_url(response, url, config)
                    continue
                if response.status_code != 200:
                    raise QodeAssetError(f"asset {shown(url)}: HTTP {response.status_code}")
                length = _announced_length(response)
                if length is not None and length > config.max_asset_bytes:
                    raise QodeAssetError(
                        f"asset {shown(url)}: Content-Length {length} is over the "
                        f"{config.max_asset_bytes}-byte limit"
                    )
                yield AssetStream(
                    url=url,
                    content_type=stored_content_type(url, response.headers.get("Content-Type")),
                    chunks=self._asset_chunks(response, url),
                )
                return
            raise QodeAssetError(f"asset {shown(reference)}: more than {MAX_REDIRECTS} redirects")
        finally:
            if response is not None:
                response.close()

    def _send_asset_request(self, url: str) -> httpx.Response:
        """Send the GET, streaming; whatever httpx refuses or fails at is a QodeAssetError."""
        client = self.get_conn()
        try:
            request = client.build_request("GET", url, headers=_asset_headers(self.config, url))
            return client.send(request, stream=True)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._asset_error(url, exc) from None

    def _asset_error(self, url: str, exc: Exception) -> QodeAssetError:
        text = Redactor(self.config.token).text(f"{type(exc).__name__}: {exc}")
        return QodeAssetError(f"asset {shown(url)}: {text}")

    def _asset_chunks(self, response: httpx.Response, url: str) -> Iterator[bytes]:
        """Decoded pieces (at most 1 MiB each), stopped beyond ``max_asset_bytes``."""
        limit, size = self.config.max_asset_bytes, 0
        try:
            decoder = BodyDecoder(response.headers.get("Content-Encoding"))
            for raw in response.iter_raw():
                for piece in decoder.feed(raw):
                    size += len(piece)
                    if size > limit:
                        raise QodeAssetError(
                            f"asset {shown(url)}: larger than the {limit}-byte limit"
                        )
                    yield piece
        except (httpx.HTTPError, BodyDecodingError) as exc:
            raise self._asset_error(url, exc) from None

    def download_asset(self, reference: str, sink: IO[bytes]) -> AssetInfo:
        """Stream an asset into ``sink`` (a file, a pipe, a buffer) and report size and sha256."""
        digest, size = hashlib.sha256(), 0
        with self.open_asset(reference) as stream:
            for chunk in stream:
                digest.update(chunk)
                size += len(chunk)
                sink.write(chunk)
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


class QodeAsyncClient:
    """Async access to the API with at most ``max_concurrency`` requests in flight.

    Use as ``async with QodeAsyncClient(config) as client:``; one client serves a whole batch.
    """

    #: A standard logger: the task runner routes it to the task log, and tests read it.
    log = logging.getLogger(__name__)

    def __init__(
        self, config: QodeConnectionConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._large_bodies = asyncio.Semaphore(
            max(1, min(config.max_concurrency, LARGE_BODIES_BYTES // max(1, config.max_body_bytes)))
        )

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
        while True:
            try:
                headers = _auth_headers(self.config)
                async with (
                    self._slots,
                    self.client.stream(method, path, headers=headers) as response,
                ):
                    reader = _BodyReader(response, self.config, what)
                    await self._read(response, reader)
                body = reader.body()
                delay = state.after_response(response, body)
                if delay is None:
                    return body
            except httpx.TransportError as exc:
                delay = state.after_error(exc)
            state.log_retry(self.log, delay)
            await asyncio.sleep(delay)

    async def _read(self, response: httpx.Response, reader: _BodyReader) -> None:
        """Read a body; growing past :data:`SMALL_BODY_BYTES` needs one of a few large-body
        slots, so memory is bounded by ``max_concurrency`` small bodies plus a few large ones
        (legitimate or gzip bombs alike), not by ``max_concurrency * max_body_bytes``."""
        large = False
        try:
            async for raw in response.aiter_raw():
                for piece in reader.pieces(raw):
                    if not large and reader.size + len(piece) > SMALL_BODY_BYTES:
                        await self._large_bodies.acquire()
                        large = True
                    if not reader.add(piece):
                        break
                if reader.done:
                    break
        finally:
            if large:
                self._large_bodies.release()

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
            return FetchResult(interview_id, raw=exc.raw, error=_detached(exc))
        except QodeError as exc:
            if isinstance(exc, QodeAuthError):
                raise
            seconds = time.perf_counter() - started
            return FetchResult(interview_id, error=_detached(exc), seconds=seconds)
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
