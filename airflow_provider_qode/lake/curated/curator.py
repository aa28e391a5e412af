"""Rebuilding curated partitions from raw: deterministic bytes, compare-and-swap writes, and a
check after every write, so each partition ends equal to a rebuild from its raw partition.

The argument, in full in ``docs/lake.md`` ("Curated tables: exactness"): a rebuild loops

1. read the partition's curated files (bytes and ETags);
2. read the raw partition (listings, the indexes needed, JSON not cached) and build the files;
3. if they are equal, stop: at a moment after (1), the files matched raw;
4. else write the differing files, each conditional on the ETag read in (1) (create-only when
   absent), and go back to (1); a refused write also goes back to (1).

A rebuild only ever returns from step 3. So the last write to a partition is followed by a
check, by its own rebuild, against raw read after that write; and a rebuild that started after
a landing finished checks against raw that includes it. Whichever rebuild writes last, the files
left equal a rebuild from raw as it was after every landing that finished before any of them
started. The conditional writes keep a slow rebuild from overwriting a newer one it never saw;
the check is what makes the result exact, so on a store that ignores conditional writes the
files still end exact (they may flip once more meanwhile).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_qode.lake.curated.cache import (
    entries_of,
    fragment_prefix,
    fragment_rows,
    rows_by_raw_key,
    sidecar_bytes,
    sidecar_key,
)
from airflow_provider_qode.lake.curated.parquet import parquet_bytes
from airflow_provider_qode.lake.curated.rows import (
    CurateError,
    RawInterview,
    TableRows,
    interview_rows,
    to_table,
)
from airflow_provider_qode.lake.curated.schemas import TABLES
from airflow_provider_qode.lake.curated.source import (
    DEFAULT_READ_THREADS,
    CacheKey,
    PartitionReader,
    Snapshot,
    dts_of_keys,
    list_partitions,
)
from airflow_provider_qode.lake.layout import LakeLayout, check_dt, valid_dts
from airflow_provider_qode.lake.store import ConditionFailed, LakeError, ObjectStore, s3_hook

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from mypy_boto3_s3 import S3Client

__all__ = ["MAX_REBUILD_ROUNDS", "CurateSummary", "Curator", "PartitionResult", "build_files"]

#: Rounds of read-build-write for one partition before giving up (raw kept changing).
MAX_REBUILD_ROUNDS = 20
PARQUET = "application/vnd.apache.parquet"

log = logging.getLogger(__name__)


def build_files(
    interviews: Iterable[RawInterview | TableRows],
) -> tuple[dict[str, bytes], dict[str, int]]:
    """The Parquet bytes of every table and their row counts; ``({}, zeros)`` for no interview.

    Each item is a published interview or its rows. A partition with at least one interview has
    a file in every table (some may hold no rows); a partition with none has no files.
    """
    rows: TableRows = {table: [] for table in TABLES}
    count = 0
    for item in interviews:
        count += 1
        found = interview_rows(item) if isinstance(item, RawInterview) else item
        for table, table_rows in found.items():
            rows[table].extend(table_rows)
    counts = {table: len(rows[table]) for table in TABLES}
    if not count:
        return {}, counts
    return {table: parquet_bytes(to_table(table, rows[table])) for table in TABLES}, counts


def _counts(files: Mapping[str, bytes]) -> dict[str, int]:
    return {t: pq.ParquetFile(pa.BufferReader(files[t])).metadata.num_rows for t in TABLES}


def _valid_dts(found: set[str]) -> list[str]:
    valid = valid_dts(found)
    for dt in sorted(found.difference(valid)):
        log.warning("skipping %r: not a dt partition", dt)
    return valid


def _body(found: tuple[bytes, str] | None) -> bytes | None:
    return None if found is None else found[0]


@dataclass(frozen=True)
class PartitionResult:
    """What one partition's rebuild found and did."""

    dt: str
    #: Rows per table now in the partition.
    rows: dict[str, int]
    #: Whether this rebuild wrote or deleted anything.
    changed: bool
    written: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    #: Read-build rounds taken (1: nothing to write; 2: written then checked; more: races).
    rounds: int = 1


@dataclass
class CurateSummary:
    """Every partition a run rebuilt; :meth:`to_xcom` stays small (counts, dates, URIs)."""

    bucket: str
    prefix: str
    partitions: list[PartitionResult] = field(default_factory=list)
    #: dt -> why its rebuild failed (the others still ran).
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> dict[str, int]:
        return {t: sum(p.rows.get(t, 0) for p in self.partitions) for t in TABLES}

    @property
    def changed(self) -> list[str]:
        return [p.dt for p in self.partitions if p.changed]

    def table_uris(self) -> dict[str, str]:
        layout = LakeLayout(self.prefix)
        return {t: f"s3://{self.bucket}/{layout.curated_prefix(t)}" for t in TABLES}

    def to_xcom(self) -> dict[str, Any]:
        return {
            "partitions": len(self.partitions),
            "rows": self.rows,
            "changed": self.changed,
            "written": sum(len(p.written) for p in self.partitions),
            "deleted": sum(len(p.deleted) for p in self.partitions),
            "failed": dict(sorted(self.failed.items())),
            "tables": self.table_uris(),
        }


class Curator:
    """Rebuilds the curated partitions of the lake under ``s3://<bucket>/<prefix>/``.

    ``store`` carries the bucket's write policy (encryption, ``extra_args``), applied to every
    Parquet file as to every raw object. ``conditional_writes``: None probes the store once,
    as the landing writer does; False writes unconditionally (exactness then rests on the
    check after each write alone).
    """

    def __init__(
        self,
        store: ObjectStore,
        prefix: str = "",
        *,
        conditional_writes: bool | None = None,
        read_threads: int = DEFAULT_READ_THREADS,
    ) -> None:
        self.store = store
        self.layout = LakeLayout(prefix)
        self.reader = PartitionReader(store, self.layout, read_threads)
        self._conditional = conditional_writes
        #: Index documents and ``interview.json`` bodies read so far (for the benchmark).
        self.reads = {"index": 0, "body": 0}

    @classmethod
    def from_conn_id(
        cls,
        aws_conn_id: str | None,
        bucket: str,
        prefix: str = "",
        *,
        extra_args: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Curator:
        """A curator on the Airflow AWS connection ``aws_conn_id`` (honours ``endpoint_url``);
        ``extra_args`` go to the ``S3Hook``, ``kwargs`` to :meth:`from_client`."""
        return cls.from_client(s3_hook(aws_conn_id, extra_args), bucket, prefix, **kwargs)

    @classmethod
    def from_client(
        cls,
        s3: S3Hook | S3Client,
        bucket: str,
        prefix: str = "",
        *,
        encryption: str | None = None,
        kms_key_id: str | None = None,
        extra_args: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Curator:
        """A curator on an ``S3Hook`` or a boto3 client (the lake writer's arguments)."""
        store = ObjectStore(
            s3, bucket, extra_args=extra_args, encryption=encryption, kms_key_id=kms_key_id
        )
        return cls(store, prefix, **kwargs)

    @property
    def bucket(self) -> str:
        return self.store.bucket

    @property
    def conditional_writes(self) -> bool:
        """Whether the store refuses a second ``If-None-Match: *`` PUT (probed once)."""
        if self._conditional is None:
            key = self.layout.probe_key(f"conditional-put-{uuid.uuid4().hex}")
            self._conditional = self.store.probe_conditional_put(key)
        return self._conditional

    def all_dts(self) -> list[str]:
        """Every ``dt`` with a raw or a curated partition, sorted (for full rebuilds)."""
        found = list_partitions(self.store, self.layout.interviews_prefix)
        for table in TABLES:
            found |= list_partitions(self.store, self.layout.curated_prefix(table))
        return _valid_dts(found)

    def touched_dts(self, manifest_keys: Iterable[str]) -> list[str]:
        """The partitions that landings changed, from their manifests (``_manifests/...json``).

        Every interview key a manifest lists as written, unchanged or deleted counts: a move
        touches its old and its new date, a quarantine exit the date it is published in.
        A manifest that is missing or unreadable is a :class:`CurateError` naming it.
        """
        found: set[str] = set()
        for key in manifest_keys:
            got = self.store.get(key)
            try:
                doc: Any = json.loads(got[0]) if got is not None else None
                keys = [o["key"] for o in doc["objects"]] + list(doc.get("deleted") or [])
            except (TypeError, KeyError, ValueError) as exc:
                raise CurateError(
                    f"manifest s3://{self.bucket}/{key} is missing or unreadable: {exc!r}"
                ) from None
            found |= dts_of_keys(self.layout, keys)
        return _valid_dts(found)

    def _current(self, dt: str) -> dict[str, tuple[bytes, str] | None]:
        return {t: self.store.get(self.layout.curated_key(t, dt)) for t in TABLES}

    def _write(
        self,
        dt: str,
        current: Mapping[str, tuple[bytes, str] | None],
        desired: Mapping[str, bytes],
        written: list[str],
        deleted: list[str],
    ) -> None:
        """Make each table's file ``desired`` (absent: delete), conditional on ``current``."""
        conditional = self.conditional_writes
        for table in TABLES:
            key = self.layout.curated_key(table, dt)
            have, want = current[table], desired.get(table)
            if want is None:
                if have is not None:
                    self.store.delete(key)
                    deleted.append(key)
                continue
            if have is not None and have[0] == want:
                continue
            if conditional:
                self.store.put(
                    key,
                    want,
                    PARQUET,
                    create=have is None,
                    if_match=None if have is None else have[1],
                )
            else:
                self.store.put(key, want, PARQUET)
            written.append(key)

    def _cached(self, dt: str, current: Mapping[str, tuple[bytes, str] | None]) -> set[CacheKey]:
        """The copies the current files were built from, as their sidecar says (else empty);
        the reader then takes them as published and their rows as in the files."""
        files = {t: found[0] for t, found in current.items() if found is not None}
        entries = entries_of(_body(self.store.get(sidecar_key(self.layout, dt))), files)
        for entry in entries or ():
            self.reader.remember(entry)
        return entries or set()

    def _build(
        self,
        snapshot: Snapshot,
        current: Mapping[str, tuple[bytes, str] | None],
        cached: set[CacheKey],
    ) -> tuple[dict[str, bytes], dict[str, int]]:
        """The files ``snapshot`` gives; the current ones when it counts exactly what they hold."""
        keys = {c.key for c in snapshot.counted}
        if cached and keys == cached:
            files = {t: found[0] for t, found in current.items() if found is not None}
            return files, _counts(files)
        in_files: dict[str, TableRows] = {}
        if any(c.rows is None for c in snapshot.counted):
            in_files = rows_by_raw_key(
                {t: found[0] for t, found in current.items() if found is not None}
            )
        return build_files(
            c.rows if c.rows is not None else in_files[c.key[0]] for c in snapshot.counted
        )

    def rebuild(self, dt: str) -> PartitionResult:
        """Make partition ``dt`` of every curated table equal a rebuild from its raw partition."""
        check_dt(dt)
        written: list[str] = []
        deleted: list[str] = []
        trust = self.conditional_writes
        fragments = self._fold_fragments(dt)
        try:
            built: tuple[Any, dict[str, bytes], dict[str, int], set[CacheKey]] | None = None
            for round_ in range(1, MAX_REBUILD_ROUNDS + 1):
                current = self._current(dt)
                cached = self._cached(dt, current)
                snapshot = self.reader.read(dt, trust_journals=trust)
                self.reads["index"] += snapshot.index_reads
                self.reads["body"] += snapshot.body_reads
                if built is None or built[0] != snapshot.fingerprint:
                    keys = {c.key for c in snapshot.counted}
                    built = (snapshot.fingerprint, *self._build(snapshot, current, cached), keys)
                _, desired, counts, keys = built
                if all(_body(current[t]) == desired.get(t) for t in TABLES):
                    if cached != keys or (deleted and not desired):
                        self._write_sidecar(dt, desired, keys)
                    for key in fragments:  # folded in: the sidecar now holds their rows
                        self.store.delete(key)
                    return PartitionResult(
                        dt,
                        counts,
                        bool(written or deleted),
                        tuple(dict.fromkeys(written)),
                        tuple(dict.fromkeys(deleted)),
                        round_,
                    )
                try:
                    self._write(dt, current, desired, written, deleted)
                except ConditionFailed:
                    log.info("dt=%s: another rebuild wrote meanwhile; reading again", dt)
        finally:
            self.reader.forget(dt)
        raise CurateError(
            f"curated partition dt={dt} under s3://{self.bucket}/{self.layout.prefix}: raw kept "
            f"changing through {MAX_REBUILD_ROUNDS} rounds; rerun the rebuild"
        )

    def _fold_fragments(self, dt: str) -> list[str]:
        """Take the rows landing tasks staged for ``dt`` into the reader; their keys."""
        keys = self.store.list_keys(fragment_prefix(self.layout, dt))
        for key in keys:
            found = self.store.get(key)
            for entry, rows in fragment_rows(_body(found) or b"").items():
                self.reader.remember(entry, rows)
        return keys

    def _write_sidecar(self, dt: str, files: Mapping[str, bytes], keys: set[CacheKey]) -> None:
        """Record which copies ``files`` hold (a hint: checked against the files when read)."""
        key = sidecar_key(self.layout, dt)
        if files:
            self.store.put(key, sidecar_bytes(files, keys))
        else:
            self.store.delete(key)

    def rebuild_many(self, dts: Iterable[str]) -> CurateSummary:
        """Rebuild each distinct ``dt`` (sorted); a partition that fails does not stop the rest.

        Raises :class:`CurateError` naming every failed partition after the others are done;
        the summary of what did finish is on the error's ``summary``.
        """
        summary = CurateSummary(self.bucket, self.layout.prefix)
        for dt in sorted(set(dts)):
            try:
                result = self.rebuild(dt)
            except (LakeError, ValueError) as exc:  # this partition's data; S3 errors propagate
                summary.failed[dt] = str(exc)
                log.error("dt=%s: %s", dt, exc)
                continue
            summary.partitions.append(result)
            log.info(
                "dt=%s: %s, rows %s",
                dt,
                "changed" if result.changed else "unchanged",
                result.rows,
            )
        if summary.failed:
            error = CurateError(
                f"{len(summary.failed)} curated partition(s) failed: "
                + "; ".join(f"dt={dt}: {why}" for dt, why in sorted(summary.failed.items()))
            )
            error.summary = summary  # type: ignore[attr-defined]
            raise error
        return summary
