"""One chunk of interview ids, end to end: fetch, check, land. The operator only wires this.

Every id given ends in exactly one place, and the summary says which:

* ``published``   passed the gate; raw JSON and assets in the lake;
* ``quarantined`` failed a rule, was unreadable (``QR-PARSE``), had an asset that could not be
  fetched (``QR-ASSET``), or had an id unfit for a URL or key (refused before any request);
  an error no rule foresaw while fetching, checking or landing one interview also ends here
  (``QR-PARSE``, the reason naming the interview), never stopping the chunk;
* ``missing``     the API answered 404 (recorded in the manifest, nothing to land);
* ``failed``      the API could not be reached after every retry: an infrastructure error, so
  the task fails *after* landing everything else and a retry picks these up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from airflow_provider_qode.exceptions import (
    QodeAPIError,
    QodeAssetError,
    QodeConfigError,
    QodeConnectionError,
    QodeNotFoundError,
    QodeResponseError,
)
from airflow_provider_qode.hooks.qode import FetchResult, QodeAsyncClient, QodeHook
from airflow_provider_qode.hooks.redact import Redactor
from airflow_provider_qode.lake.layout import InvalidTimestampError, LakeLayout, asset_file_name
from airflow_provider_qode.lake.writer import (
    LakeError,
    LakeWriter,
    PublishResult,
    QuarantineResult,
    WrittenObject,
)
from airflow_provider_qode.models import (
    Interview,
    id_text,
    interview_id_problem,
    parse_interview,
    unexpected_error_reason,
    unicode_text,
)
from airflow_provider_qode.progress import (
    StageProgress,
    fetch_with_progress,
    log_outcome,
    stream_with_progress,
)
from airflow_provider_qode.progress import log as progress_log
from airflow_provider_qode.quality import start_warm_up
from airflow_provider_qode.quality.report import html_report, json_report, lake_details

if TYPE_CHECKING:  # the gate (pandas, GX) is imported when a chunk runs, not with the DAG file
    from airflow_provider_qode.quality.gate import BatchVerdict, FetchedInterview, InterviewVerdict

log = logging.getLogger(__name__)

ASSET_RULE = "QR-ASSET"
PARSE_RULE = "QR-PARSE"
ID_RULE = "QR-LIFE-02"
TIMESTAMP_RULE = "QR-LIFE-03"
#: Landing threads: each waits on an asset download (API latency) between its S3 writes.
DEFAULT_S3_CONCURRENCY = 16
#: Interviews fetched, checked and landed together: a chunk's peak memory follows this, not the
#: chunk's size (see ``docs/operations.md``). Larger costs memory; smaller, more GX runs.
DEFAULT_SUB_BATCH = 500
#: The first sub-batch of a chunk is this share of the others: landing starts sooner.
FIRST_SHARE = 5
#: Failures of the store or the API, not of one interview's data: they fail the task (after the
#: rest has landed, or at once) so that a retry finds the store or API back, never quarantine.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    BotoCoreError,
    ClientError,
    LakeError,
    OSError,
    QodeAPIError,
    QodeConfigError,
    QodeConnectionError,
)


@dataclass
class ChunkSummary:
    """What one chunk did; :meth:`to_xcom` is small enough for an XCom (no payloads)."""

    requested: int = 0
    published: int = 0
    quarantined: int = 0
    missing: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unchanged: int = 0
    moved: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    partitions: Counter[str] = field(default_factory=Counter)
    #: The ``dt`` partitions whose published interviews this chunk changed: where an interview
    #: was newly published or rewritten (a quarantine exit too) and where a moved one left.
    #: Their curated tables are rebuilt after the landing; unchanged interviews touch nothing.
    touched_dts: set[str] = field(default_factory=set)
    manifest_key: str = ""
    quality_keys: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    def to_xcom(self, bucket: str) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "published": self.published,
            "quarantined": self.quarantined,
            "missing": len(self.missing),
            "failed": len(self.failed),
            "unchanged": self.unchanged,
            "moved": self.moved,
            "by_rule": dict(sorted(self.by_rule.items())),
            "partitions": dict(sorted(self.partitions.items())),
            "touched_dts": sorted(self.touched_dts),
            "manifest_uri": f"s3://{bucket}/{self.manifest_key}",
            "quality_report_uris": [f"s3://{bucket}/{k}" for k in self.quality_keys],
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


async def _fetch_all(hook: QodeHook, ids: Sequence[str]) -> list[FetchResult]:
    async with QodeAsyncClient(hook.config) as client:
        try:
            return await fetch_with_progress(client, ids)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # one body broke the client in a way it does not type
            log.warning(
                "Fetch failed with %s; fetching each id on its own to find the interview",
                type(exc).__name__,
            )
            return list(await asyncio.gather(*(_fetch_isolated(client, i) for i in ids)))


async def _fetch_isolated(client: QodeAsyncClient, interview_id: str) -> FetchResult:
    """One id, with an unexpected error turned into a ``QR-PARSE`` result naming the id."""
    try:
        return await client.fetch(interview_id)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        reason = unexpected_error_reason(exc, "fetching", interview_id)
        error = QodeResponseError(reason, raw=b"", interview_id=interview_id)
        return FetchResult(interview_id, error=error)


def fetch_chunk(hook: QodeHook, ids: Sequence[str]) -> list[FetchResult]:
    """Fetch ``ids`` concurrently (bounded by the connection's ``max_concurrency``)."""
    return asyncio.run(_fetch_all(hook, ids))


def _land_assets(
    hook: QodeHook, writer: LakeWriter, interview_id: str, interview: Interview
) -> list[WrittenObject]:
    """Stream each asset the payload names from the API to S3; QodeAssetError if one fails."""
    base = writer.plan(interview_id, interview).base
    written = []
    for name, reference in interview.asset_paths.items():
        try:
            with hook.open_asset(reference) as stream:
                written.append(
                    writer.put_asset_stream(
                        base,
                        asset_file_name(name, reference),
                        stream,
                        content_type=stream.content_type,
                    )
                )
        except QodeAssetError:
            raise
        except httpx.HTTPError as exc:
            raise QodeAssetError(
                f"asset {name} ({reference!r}): {type(exc).__name__}: {exc}"
            ) from exc
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # a reference our code could not handle: this asset's fault
            raise QodeAssetError(
                f"asset {name} ({reference!r}) could not be fetched: "
                f"unexpected {type(exc).__name__}: {exc}"
            ) from exc
    return written


def touched_dts(result: PublishResult | QuarantineResult, layout: LakeLayout) -> frozenset[str]:
    """The ``dt`` partitions a landing changed: every published partition it removed keys from
    (a move; quarantine keys are not published partitions), what an earlier try of this run
    changed for the id (that try reported nothing), and a publish's own partition unless it
    was unchanged (or superseded by a later copy, whose writer reports it). A quarantine keeps
    the published copy, so it adds no partition of its own."""
    touched = {*filter(None, map(layout.published_dt, result.removed)), *result.earlier_in_run}
    if isinstance(result, PublishResult) and not result.unchanged:
        touched.add(result.dt)
    return frozenset(touched)


@dataclass(frozen=True)
class Outcome:
    """Where one interview ended; ``partition`` is None for quarantine."""

    rules: tuple[str, ...] = ()
    partition: str | None = None
    unchanged: bool = False
    moved: bool = False
    #: ``dt`` partitions whose published content changed (see ``ChunkSummary.touched_dts``).
    touched_dts: frozenset[str] = frozenset()


class ChunkIngestor:
    """Wires hook, gate and writer for one chunk; built once per batch, used once."""

    def __init__(
        self,
        hook: QodeHook,
        writer: LakeWriter,
        *,
        s3_concurrency: int = DEFAULT_S3_CONCURRENCY,
        sub_batch: int = DEFAULT_SUB_BATCH,
    ) -> None:
        if sub_batch < 1:
            raise QodeConfigError("sub_batch must be at least 1")
        self.hook = hook
        self.writer = writer
        self.s3_concurrency = s3_concurrency
        self.sub_batch = sub_batch
        self.summary = ChunkSummary()
        self._fetched_at = datetime.now(UTC).isoformat()
        self._redactor = Redactor(hook.config.token)
        # Published since the last staging of curated rows (a sub-batch's worth at most).
        self._published: list[tuple[PublishResult, Interview]] = []
        self._published_lock = threading.Lock()

    def _quarantine(
        self,
        interview_id: str,
        raw: bytes,
        rules: list[str],
        reasons: list[str],
        fetched_at: str,
    ) -> Outcome:
        # The writer stores id and reasons as UTF-8 JSON: a lone surrogate must not stop it.
        # Reasons may quote a body that echoes the token: never write it.
        texts = [self._redactor.text(unicode_text(reason)) for reason in reasons]
        result = self.writer.quarantine(
            id_text(interview_id), raw, rules, texts, fetched_at=fetched_at
        )
        # A published copy stays; only the stray directories of an unfinished attempt go.
        return Outcome(rules=tuple(rules), touched_dts=touched_dts(result, self.writer.layout))

    def _land(
        self,
        verdict: InterviewVerdict,
        raw: bytes,
        interview: Interview | None,
        fetched_at: str,
    ) -> Outcome:
        """Runs in a pool thread: touches only the writer and hook, returns what happened.

        Whatever one interview does ends as its own quarantine; only a failing store or API
        (:data:`INFRASTRUCTURE_ERRORS`) is raised, to fail the task for a retry.
        """
        interview_id = verdict.requested_id or verdict.interview_id
        try:
            return self._land_one(interview_id, verdict, raw, interview, fetched_at)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # last resort: one interview never stops the chunk
            reason = self._redactor.text(unexpected_error_reason(exc, "landing", interview_id))
            log.error("%s: %s", PARSE_RULE, reason)  # no traceback: its frames may hold secrets
            return self._quarantine(
                interview_id, raw, [PARSE_RULE], [f"{PARSE_RULE}: {reason}"], fetched_at
            )

    def _land_one(
        self,
        interview_id: str,
        verdict: InterviewVerdict,
        raw: bytes,
        interview: Interview | None,
        fetched_at: str,
    ) -> Outcome:
        if not verdict.published or interview is None:
            return self._quarantine(
                interview_id, raw, list(verdict.failed_rules), verdict.reason_texts(), fetched_at
            )
        try:
            assets = _land_assets(self.hook, self.writer, interview_id, interview)
        except InvalidTimestampError as exc:
            # QR-LIFE-03 passes an absent timestamp, but without one there is no date partition.
            reason = f"{TIMESTAMP_RULE}: {exc}: the date partition cannot be decided"
            return self._quarantine(interview_id, raw, [TIMESTAMP_RULE], [reason], fetched_at)
        except QodeAssetError as exc:
            reasons = [f"{ASSET_RULE}: {exc}"]
            return self._quarantine(interview_id, raw, [ASSET_RULE], reasons, fetched_at)
        result = self.writer.publish(interview_id, raw, interview, assets)
        with self._published_lock:
            self._published.append((result, interview))
        return Outcome(
            rules=verdict.warnings,
            partition=f"dt={result.dt}/role={result.role}",
            unchanged=result.unchanged,
            moved=bool(result.removed),
            touched_dts=touched_dts(result, self.writer.layout),
        )

    def _stage_curated_rows(self) -> None:
        """Hand what was published so far to the curated layer's row cache, then forget it."""
        with self._published_lock:
            published, self._published = self._published, []
        if published:
            # pyarrow loads here, after the first landings, not with the task.
            from airflow_provider_qode.lake.curated.cache import stage_published

            stage_published(self.writer, published)

    def _count(self, outcome: Outcome) -> None:
        summary = self.summary
        summary.by_rule.update(outcome.rules)
        summary.touched_dts.update(outcome.touched_dts)
        if outcome.partition is None:
            summary.quarantined += 1
            return
        summary.published += 1
        summary.partitions[outcome.partition] += 1
        summary.unchanged += int(outcome.unchanged)
        summary.moved += int(outcome.moved)

    def run(self, interview_ids: Sequence[str]) -> ChunkSummary:
        start_warm_up()  # pandas and GX import while the chunk is fetched
        started = time.perf_counter()
        ids = list(dict.fromkeys(interview_ids))
        self.summary.requested = len(ids)
        usable = []
        for interview_id in ids:
            problem = interview_id_problem(interview_id)
            if problem:
                reason = f"{ID_RULE}: refused before any request: {problem}"
                self._count(
                    self._quarantine(interview_id, b"", [ID_RULE], [reason], self._fetched_at)
                )
            else:
                usable.append(interview_id)

        # Fetch, check and land in sub-batches: the fetch runs ahead on its own thread while a
        # sub-batch is checked and the two before it land, so memory follows the sub-batch. The
        # first sub-batch is smaller, so that landing starts early.
        merged: BatchVerdict | None = None
        # Two sub-batches land at a time: the threads never idle at a sub-batch's tail.
        earlier: list[Future[Outcome]] = []
        landing: list[Future[Outcome]] = []
        # 404s and failures count as done: nothing of theirs is landed.
        landed = StageProgress("Landed", len(usable))
        seconds = self.summary.seconds
        seconds.update(fetch=0.0, validate=0.0, land=0.0)
        with (
            ThreadPoolExecutor(max_workers=self.s3_concurrency) as pool,
            _FetchAhead(self.hook, usable, self.sub_batch) as fetched,
        ):
            # Imported once the fetch thread runs: the gate loads pandas (the warm-up's work).
            from airflow_provider_qode.quality.gate import validate_batch
            from airflow_provider_qode.quality.report import merge_batches

            for part in fetched:
                items, landing_raw = self._sort(part, pool, landed)
                # A store without conditional PUT needs each id's index read before its first
                # write: read them while the sub-batch is checked.
                reads: list[Future[None]] = []
                if not self.writer.conditional_writes:
                    prefetch = self.writer.prefetch_index
                    reads = [pool.submit(prefetch, item.requested_id or "") for item in items]
                gate_started = time.perf_counter()
                progress_log.info("Checking %d interviews against the quality rules", len(items))
                verdicts = validate_batch(items, redact=self._redactor.text)
                seconds["validate"] += time.perf_counter() - gate_started
                for read in reads:
                    read.result()

                land_started = time.perf_counter()
                self._settle(earlier, landed)
                self._stage_curated_rows()
                self.writer.begin(
                    (
                        (verdict.requested_id or verdict.interview_id, item.interview)
                        for verdict, item in zip(verdicts.interviews, items, strict=True)
                        if verdict.published and item.interview is not None
                    ),
                    fetched_at=part.fetched_at,
                )
                earlier, landing = (
                    landing,
                    landing_raw
                    + [
                        pool.submit(self._land, verdict, item.raw, item.interview, part.fetched_at)
                        for verdict, item in zip(verdicts.interviews, items, strict=True)
                    ],
                )
                seconds["land"] += time.perf_counter() - land_started
                merged = merge_batches(merged, verdicts)
                del items, verdicts
            land_started = time.perf_counter()
            self._settle(earlier + landing, landed)
            self._stage_curated_rows()
            self._touched_by_missing(pool)
            seconds["fetch"] = fetched.seconds
        if merged is None:
            from airflow_provider_qode.quality.gate import validate_batch

            merged = validate_batch([])
        # Sub-batches come as their fetches end: the report and manifest list ids in chunk order.
        order = {interview_id: n for n, interview_id in enumerate(usable)}
        merged.interviews.sort(key=lambda v: order.get(v.requested_id or "", len(order)))
        self.summary.missing.sort(key=order.__getitem__)
        self.summary.failed = dict(sorted(self.summary.failed.items(), key=lambda f: order[f[0]]))
        merged.interviews[:] = [
            dataclasses.replace(v, position=n) for n, v in enumerate(merged.interviews)
        ]
        details = lake_details(self.writer)
        self.summary.quality_keys = self.writer.write_quality_report(
            json_report(merged, **details), html_report(merged, **details)
        )
        self.summary.manifest_key = self.writer.write_manifest(
            extra={
                "missing": self.summary.missing,
                "failed": self.summary.failed,
                "outcomes": {
                    "requested": self.summary.requested,
                    "published": self.summary.published,
                    "quarantined": self.summary.quarantined,
                },
            }
        )
        seconds["land"] += time.perf_counter() - land_started
        seconds["total"] = time.perf_counter() - started
        done = self.summary.to_xcom(self.writer.bucket)
        log_outcome(done["manifest_uri"], done["quality_report_uris"], done["seconds"])
        return self.summary

    def _sort(
        self, part: _Fetched, pool: ThreadPoolExecutor, progress: StageProgress
    ) -> tuple[list[FetchedInterview], list[Future[Outcome]]]:
        """Sort one sub-batch's results: bodies for the gate; 404s and failures noted; bodies
        over the size cap sent to quarantine at once (the gate never sees them)."""
        from airflow_provider_qode.quality.gate import FetchedInterview

        items: list[FetchedInterview] = []
        quarantines: list[Future[Outcome]] = []
        settled = 0
        for result in part.results:
            if isinstance(result.error, QodeNotFoundError):
                self.summary.missing.append(result.interview_id)
                settled += 1
            elif isinstance(result.error, QodeResponseError):
                reason = f"{PARSE_RULE}: {result.error}"
                quarantines.append(
                    pool.submit(
                        self._quarantine,
                        result.interview_id,
                        result.raw or b"",
                        [PARSE_RULE],
                        [reason],
                        part.fetched_at,
                    )
                )
            elif result.error is not None:
                self.summary.failed[result.interview_id] = self._redactor.text(str(result.error))
                settled += 1
            else:
                raw = result.raw or b""
                try:
                    model: Interview | None = parse_interview(raw, result.interview_id)
                except Exception:  # the gate parses again and records QR-PARSE
                    model = None
                items.append(FetchedInterview(result.interview_id, raw, interview=model))
        progress.advance(settled)
        return items, quarantines

    def _touched_by_missing(self, pool: ThreadPoolExecutor) -> None:
        """Ids the API no longer has (404) stay published if they were: when an earlier try of
        this run published one, report what that publish changed, as for the ids it lands."""
        documents = pool.map(self._index_or_none, self.summary.missing)
        for document in documents:
            self.summary.touched_dts.update(self.writer.published_in_this_run(document))

    def _index_or_none(self, interview_id: str) -> dict[str, Any] | None:
        try:
            return self.writer.read_index(interview_id)
        except LakeError as exc:  # a damaged index stops the run that lands the id, not this
            log.warning("%s (the API answers 404 for it)", exc)
            return None

    def _settle(self, landing: list[Future[Outcome]], progress: StageProgress) -> None:
        """Wait for a sub-batch to land and count where each interview ended."""
        for future in landing:
            self._count(future.result())
            progress.advance()


@dataclass(frozen=True)
class _Fetched:
    """One sub-batch of fetch results, and when its fetch ended (between copies, the later
    fetch wins: see ``docs/lake.md``)."""

    results: list[FetchResult]
    fetched_at: str


class _FetchAhead:
    """Fetches a chunk on an event loop of its own, in a thread, ahead of the landing.

    Iterating yields :class:`_Fetched` sub-batches of ``size`` (the first smaller, see
    :data:`FIRST_SHARE`). At most one waits in the queue
    and one more is being fetched, so memory stays bounded however long the chunk. Leaving the
    ``with`` block stops the fetch (after an error in the landing, too). An infrastructure error
    of the fetch is raised by the iteration.
    """

    _DONE = object()

    def __init__(self, hook: QodeHook, ids: Sequence[str], size: int) -> None:
        self.hook = hook
        self.ids = ids
        self.size = size
        self.seconds = 0.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qode-fetch", daemon=True)

    def __enter__(self) -> _FetchAhead:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def __iter__(self) -> Iterator[_Fetched]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            asyncio.run(self._fetch())
        except BaseException as exc:  # handed to the landing thread, which raises it
            self._put(exc)
        else:
            self._put(self._DONE)
        finally:
            self.seconds = time.perf_counter() - started

    async def _fetch(self) -> None:
        """Fetch until done, or until the landing stops (checked every 0.1 s)."""
        task = asyncio.ensure_future(self._pump())
        while not task.done():
            await asyncio.wait({task}, timeout=0.1)
            if self._stop.is_set():
                task.cancel()
                break
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _pump(self) -> None:
        async with QodeAsyncClient(self.hook.config) as client:
            fetch = functools.partial(_fetch_isolated, client)
            first = max(1, self.size // FIRST_SHARE)
            parts = stream_with_progress(client, self.ids, self.size, first=first, fetch=fetch)
            async with contextlib.aclosing(parts):
                async for results in parts:
                    part = _Fetched(results, datetime.now(UTC).isoformat())
                    if not await asyncio.to_thread(self._put, part):
                        return  # the landing stopped

    def _put(self, item: object) -> bool:
        """Hand ``item`` over, waiting while the queue is full; False once the landing stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False


def ingest_chunk(
    hook: QodeHook,
    writer: LakeWriter,
    interview_ids: Sequence[str],
    *,
    s3_concurrency: int = DEFAULT_S3_CONCURRENCY,
    sub_batch: int = DEFAULT_SUB_BATCH,
) -> ChunkSummary:
    """Fetch, check and land one chunk; see the module docstring for where each id ends.

    ``sub_batch``: interviews fetched, checked and landed together (the chunk keeps one
    manifest and one quality report).
    """
    ingestor = ChunkIngestor(hook, writer, s3_concurrency=s3_concurrency, sub_batch=sub_batch)
    return ingestor.run(interview_ids)


__all__ = ["DEFAULT_SUB_BATCH", "ChunkSummary", "fetch_chunk", "ingest_chunk"]
