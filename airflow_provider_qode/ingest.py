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
import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
from airflow_provider_qode.lake.writer import LakeError, LakeWriter, PublishResult, WrittenObject
from airflow_provider_qode.models import (
    Interview,
    id_text,
    interview_id_problem,
    parse_interview,
    unexpected_error_reason,
    unicode_text,
)
from airflow_provider_qode.progress import StageProgress, fetch_with_progress, log_outcome
from airflow_provider_qode.progress import log as progress_log
from airflow_provider_qode.quality.report import html_report, json_report, lake_details

if TYPE_CHECKING:  # the gate (pandas, GX) is imported when a chunk runs, not with the DAG file
    from airflow_provider_qode.quality.gate import FetchedInterview, InterviewVerdict

log = logging.getLogger(__name__)

ASSET_RULE = "QR-ASSET"
PARSE_RULE = "QR-PARSE"
ID_RULE = "QR-LIFE-02"
TIMESTAMP_RULE = "QR-LIFE-03"
#: Landing threads: each waits on an asset download (API latency) between its S3 writes.
DEFAULT_S3_CONCURRENCY = 16
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


def touched_dts(result: PublishResult, layout: LakeLayout) -> frozenset[str]:
    """The ``dt`` partitions a publish changed: its own unless unchanged (or superseded by a
    later copy, whose writer reports it), and every published partition it removed keys from
    (a move). Quarantine keys removed on a quarantine exit are not published partitions."""
    if result.unchanged:
        return frozenset()
    return frozenset({result.dt, *filter(None, map(layout.published_dt, result.removed))})


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
        self, hook: QodeHook, writer: LakeWriter, *, s3_concurrency: int = DEFAULT_S3_CONCURRENCY
    ) -> None:
        self.hook = hook
        self.writer = writer
        self.s3_concurrency = s3_concurrency
        self.summary = ChunkSummary()
        self._fetched_at = datetime.now(UTC).isoformat()
        self._redactor = Redactor(hook.config.token)
        self.published: list[tuple[PublishResult, Interview]] = []  # for the curated row cache

    def _quarantine(
        self, interview_id: str, raw: bytes, rules: list[str], reasons: list[str]
    ) -> Outcome:
        # The writer stores id and reasons as UTF-8 JSON: a lone surrogate must not stop it.
        # Reasons may quote a body that echoes the token: never write it.
        texts = [self._redactor.text(unicode_text(reason)) for reason in reasons]
        result = self.writer.quarantine(
            id_text(interview_id), raw, rules, texts, fetched_at=self._fetched_at
        )
        # A published copy stays; only the stray directories of an unfinished attempt go.
        removed = filter(None, map(self.writer.layout.published_dt, result.removed))
        return Outcome(rules=tuple(rules), touched_dts=frozenset(removed))

    def _land(self, verdict: InterviewVerdict, raw: bytes, interview: Interview | None) -> Outcome:
        """Runs in a pool thread: touches only the writer and hook, returns what happened.

        Whatever one interview does ends as its own quarantine; only a failing store or API
        (:data:`INFRASTRUCTURE_ERRORS`) is raised, to fail the task for a retry.
        """
        interview_id = verdict.requested_id or verdict.interview_id
        try:
            return self._land_one(interview_id, verdict, raw, interview)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # last resort: one interview never stops the chunk
            reason = self._redactor.text(unexpected_error_reason(exc, "landing", interview_id))
            log.error("%s: %s", PARSE_RULE, reason)  # no traceback: its frames may hold secrets
            return self._quarantine(interview_id, raw, [PARSE_RULE], [f"{PARSE_RULE}: {reason}"])

    def _land_one(
        self,
        interview_id: str,
        verdict: InterviewVerdict,
        raw: bytes,
        interview: Interview | None,
    ) -> Outcome:
        if not verdict.published or interview is None:
            return self._quarantine(
                interview_id, raw, list(verdict.failed_rules), verdict.reason_texts()
            )
        try:
            assets = _land_assets(self.hook, self.writer, interview_id, interview)
        except InvalidTimestampError as exc:
            # QR-LIFE-03 passes an absent timestamp, but without one there is no date partition.
            reason = f"{TIMESTAMP_RULE}: {exc}: the date partition cannot be decided"
            return self._quarantine(interview_id, raw, [TIMESTAMP_RULE], [reason])
        except QodeAssetError as exc:
            return self._quarantine(interview_id, raw, [ASSET_RULE], [f"{ASSET_RULE}: {exc}"])
        result = self.writer.publish(interview_id, raw, interview, assets)
        self.published.append((result, interview))
        return Outcome(
            rules=verdict.warnings,
            partition=f"dt={result.dt}/role={result.role}",
            unchanged=result.unchanged,
            moved=bool(result.removed),
            touched_dts=touched_dts(result, self.writer.layout),
        )

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
        from airflow_provider_qode.quality.gate import FetchedInterview, validate_batch

        started = time.perf_counter()
        ids = list(dict.fromkeys(interview_ids))
        self.summary.requested = len(ids)
        usable = []
        for interview_id in ids:
            problem = interview_id_problem(interview_id)
            if problem:
                reason = f"{ID_RULE}: refused before any request: {problem}"
                self._count(self._quarantine(interview_id, b"", [ID_RULE], [reason]))
            else:
                usable.append(interview_id)

        # A store without conditional PUT needs each id's index read before its first write:
        # read them while the chunk is fetched. With it, new ids (most) need no read at all.
        with ThreadPoolExecutor(max_workers=self.s3_concurrency) as prefetch:
            if not self.writer.conditional_writes:
                for interview_id in usable:
                    prefetch.submit(self.writer.prefetch_index, interview_id)
            results = fetch_chunk(self.hook, usable)
        self._fetched_at = datetime.now(UTC).isoformat()  # between two copies, the later wins
        self.summary.seconds["fetch"] = time.perf_counter() - started

        batch: list[FetchedInterview] = []
        for result in results:
            if isinstance(result.error, QodeNotFoundError):
                self.summary.missing.append(result.interview_id)
            elif isinstance(result.error, QodeResponseError):
                # Over the size cap: the gate never sees it; keep the bytes we have.
                reason = f"{PARSE_RULE}: {result.error}"
                raw = result.raw or b""
                self._count(self._quarantine(result.interview_id, raw, [PARSE_RULE], [reason]))
            elif result.error is not None:
                self.summary.failed[result.interview_id] = self._redactor.text(str(result.error))
            else:
                raw = result.raw or b""
                try:
                    model: Interview | None = parse_interview(raw, result.interview_id)
                except Exception:  # the gate parses again and records QR-PARSE
                    model = None
                batch.append(FetchedInterview(result.interview_id, raw, interview=model))

        gate_started = time.perf_counter()
        progress_log.info("Checking %d interviews against the quality rules", len(batch))
        verdicts = validate_batch(batch, redact=self._redactor.text)
        self.summary.seconds["validate"] = time.perf_counter() - gate_started

        land_started = time.perf_counter()
        self.writer.begin(
            (
                (verdict.requested_id or verdict.interview_id, item.interview)
                for verdict, item in zip(verdicts.interviews, batch, strict=True)
                if verdict.published and item.interview is not None
            ),
            fetched_at=self._fetched_at,
        )
        with ThreadPoolExecutor(max_workers=self.s3_concurrency) as pool:
            futures = [
                pool.submit(self._land, verdict, item.raw, item.interview)
                for verdict, item in zip(verdicts.interviews, batch, strict=True)
            ]
            landing = StageProgress("Landed", len(futures))
            for future in futures:
                self._count(future.result())
                landing.advance()
        from airflow_provider_qode.lake.curated.cache import stage_published  # pyarrow: lazily

        stage_published(self.writer, self.published)
        details = lake_details(self.writer)
        self.summary.quality_keys = self.writer.write_quality_report(
            json_report(verdicts, **details), html_report(verdicts, **details)
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
        self.summary.seconds["land"] = time.perf_counter() - land_started
        self.summary.seconds["total"] = time.perf_counter() - started
        done = self.summary.to_xcom(self.writer.bucket)
        log_outcome(done["manifest_uri"], done["quality_report_uris"], done["seconds"])
        return self.summary


def ingest_chunk(
    hook: QodeHook,
    writer: LakeWriter,
    interview_ids: Sequence[str],
    *,
    s3_concurrency: int = DEFAULT_S3_CONCURRENCY,
) -> ChunkSummary:
    """Fetch, check and land one chunk; see the module docstring for where each id ends."""
    return ChunkIngestor(hook, writer, s3_concurrency=s3_concurrency).run(interview_ids)


__all__ = ["ChunkSummary", "fetch_chunk", "ingest_chunk"]
