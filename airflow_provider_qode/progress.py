"""Progress lines for one landing chunk: what the task log says while a chunk is under way.

A chunk of hundreds of interviews takes minutes; without these lines the log is silent between
"Landing N interviews" and the gate's line, and again until the summary. Each stage logs at
most one line per ``interval`` seconds or per ``step`` of its total (plus its last line), so a
5,000-id chunk writes tens of lines, not thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from airflow_provider_qode.hooks.qode import FetchResult, QodeAsyncClient

log = logging.getLogger("airflow_provider_qode.ingest")

#: Seconds between two progress lines of a stage, at most (unless a ``step`` is reached first).
PROGRESS_INTERVAL = 10.0
#: Share of a stage's total between two progress lines.
PROGRESS_STEP = 0.1


class RequestCounter:
    """Counts a batch's retries and 429 answers through the httpx client's event hooks.

    A retry is any request for a path already requested, so the count needs nothing from the
    retry loop itself; ``on_change`` is called after each request or answer (a heartbeat).
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self.requests = 0
        self.rate_limited = 0
        self.server_errors = 0
        self._paths: set[str] = set()
        self.on_change = on_change

    @property
    def retries(self) -> int:
        return self.requests - len(self._paths)

    def attach(self, client: httpx.AsyncClient) -> None:
        client.event_hooks["request"].append(self._on_request)
        client.event_hooks["response"].append(self._on_response)

    async def _on_request(self, request: httpx.Request) -> None:
        self.requests += 1
        self._paths.add(request.url.path)
        if self.on_change:
            self.on_change()

    async def _on_response(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            self.rate_limited += 1
        elif response.status_code >= 500:
            self.server_errors += 1
        if self.on_change:
            self.on_change()

    def describe(self) -> str:
        return (
            f"retries {self.retries}, 429 answers {self.rate_limited}, "
            f"5xx answers {self.server_errors}"
        )


class StageProgress:
    """``<verb> k/N (p%)`` lines for one stage, throttled; :meth:`advance` once per item."""

    def __init__(
        self,
        verb: str,
        total: int,
        *,
        detail: Callable[[], str] | None = None,
        interval: float = PROGRESS_INTERVAL,
        step: float = PROGRESS_STEP,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verb = verb
        self.total = total
        self.done = 0
        self._detail = detail
        self._interval = interval
        self._every = max(1, math.ceil(total * step))
        self._log = logger
        self._clock = clock
        self._started = self._last_time = clock()
        self._last_done = 0

    def advance(self, count: int = 1) -> None:
        self.done += count
        self.tick()

    def tick(self) -> None:
        """Log a line if the stage moved a step, ended, or has been quiet for ``interval``."""
        now = self._clock()
        finished = self.done >= self.total and self._last_done < self.total
        stepped = self.done - self._last_done >= self._every
        if finished or stepped or now - self._last_time >= self._interval:
            self._emit(now)

    def _emit(self, now: float) -> None:
        self._last_time, self._last_done = now, self.done
        share = 100 * self.done // self.total if self.total else 100
        detail = f"; {self._detail()}" if self._detail else ""
        self._log.info(
            "%s %d/%d (%d%%)%s; %.1f s",
            self.verb,
            self.done,
            self.total,
            share,
            detail,
            now - self._started,
        )


async def _heartbeat(progress: StageProgress, period: float) -> None:
    """Tick while nothing else does (every request waiting out a long ``Retry-After``)."""
    while True:
        await asyncio.sleep(period)
        progress.tick()


async def fetch_with_progress(
    client: QodeAsyncClient, interview_ids: Sequence[str], *, interval: float = PROGRESS_INTERVAL
) -> list[FetchResult]:
    """:meth:`QodeAsyncClient.fetch_many` with ``Fetched k/N`` lines (retries, 429s) on the way.

    Results come back in the order of ``interview_ids``, as with ``fetch_many``. A line comes
    at least every ``interval`` seconds, even while every request waits out a backoff.
    """
    counter = RequestCounter()
    progress = StageProgress(
        "Fetched", len(interview_ids), detail=counter.describe, interval=interval
    )
    counter.on_change = progress.tick
    counter.attach(client.client)
    log.info(
        "Fetching %d interviews (at most %d requests in flight)",
        len(interview_ids),
        client.config.max_concurrency,
    )
    results: dict[str, FetchResult] = {}
    beat = asyncio.ensure_future(_heartbeat(progress, min(1.0, interval / 2)))
    try:
        async for result in client.iter_fetch(interview_ids):
            results[result.interview_id] = result
            progress.advance()
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    return [results[i] for i in interview_ids]


async def stream_with_progress(
    client: QodeAsyncClient,
    interview_ids: Sequence[str],
    size: int,
    *,
    first: int | None = None,
    fetch: Callable[[str], Awaitable[FetchResult]] | None = None,
    interval: float = PROGRESS_INTERVAL,
) -> AsyncGenerator[list[FetchResult]]:
    """Fetch ``interview_ids``, yielding the results in lists of ``size`` as they arrive (the
    first list of ``first``, when given).

    At most twice the connection's ``max_concurrency`` ids are under way at a time, and no new
    one starts while the consumer holds a yielded list: results never pile up ahead of it, so
    memory follows ``size``, not the chunk. Lists hold results in the order they arrived.
    ``fetch`` (default ``client.fetch``) fetches one id. ``Fetched k/N`` lines as with
    :func:`fetch_with_progress`.
    """
    fetch_one = fetch or client.fetch
    counter = RequestCounter()
    progress = StageProgress(
        "Fetched", len(interview_ids), detail=counter.describe, interval=interval
    )
    counter.on_change = progress.tick
    counter.attach(client.client)
    window = 2 * client.config.max_concurrency
    log.info(
        "Fetching %d interviews (at most %d requests in flight, checked and landed %d at a time)",
        len(interview_ids),
        client.config.max_concurrency,
        size,
    )
    waiting = iter(interview_ids)
    running: set[asyncio.Future[FetchResult]] = set()
    ready: list[FetchResult] = []
    want = first or size

    def top_up() -> None:
        while len(running) < window:
            interview_id = next(waiting, None)
            if interview_id is None:
                return
            running.add(asyncio.ensure_future(fetch_one(interview_id)))

    beat = asyncio.ensure_future(_heartbeat(progress, min(1.0, interval / 2)))
    try:
        top_up()
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            running.difference_update(done)
            for task in done:
                ready.append(task.result())
                progress.advance()
            top_up()
            while len(ready) >= want:
                batch, ready = ready[:want], ready[want:]
                want = size
                yield batch
        if ready:
            yield ready
    finally:
        beat.cancel()
        for task in running:
            task.cancel()
        await asyncio.gather(beat, *running, return_exceptions=True)


def log_outcome(
    manifest_uri: str,
    report_uris: Sequence[str],
    seconds: Mapping[str, float],
    logger: logging.Logger = log,
) -> None:
    """The chunk's last lines: where its manifest and quality reports are, and stage timings."""
    by_kind: dict[str, Any] = {uri.rsplit(".", 1)[-1].upper(): uri for uri in report_uris}
    for kind in ("HTML", "JSON"):
        if kind in by_kind:
            logger.info("Quality report (%s): %s", kind, by_kind[kind])
    logger.info("Manifest: %s", manifest_uri)
    logger.info(
        "Stage timings: %s",
        ", ".join(f"{stage} {value:.1f} s" for stage, value in seconds.items()),
    )


__all__ = [
    "RequestCounter",
    "StageProgress",
    "fetch_with_progress",
    "log_outcome",
    "stream_with_progress",
]
