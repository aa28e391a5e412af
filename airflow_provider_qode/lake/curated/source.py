"""Reading one raw date partition as the curated layer counts it: only what the index publishes.

A listing of ``interviews/dt=D/`` can show an interview twice during a move (the new copy is
written before the old one goes) and a leftover directory after a crash. ``_index/<id>.json`` is
authoritative (``docs/lake.md``), so an ``interview.json`` counts only when its id's index is
``published`` at exactly that key. Such other copies exist only while a journal names their id,
so with journals the index is read only where one can exist (see :class:`PartitionReader`).
Rows are kept by (key, ETag, asset count), so reading the same partition again costs listings,
not GETs or parsing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow_provider_qode.lake.curated.rows import (
    CurateError,
    RawInterview,
    TableRows,
    interview_rows,
)
from airflow_provider_qode.lake.index import read_index
from airflow_provider_qode.lake.journal import read_journal
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.records import PUBLISHED
from airflow_provider_qode.lake.store import LakeError, ObjectStore
from airflow_provider_qode.models import Interview

__all__ = [
    "DEFAULT_READ_THREADS",
    "CacheKey",
    "Counted",
    "ListedObject",
    "PartitionReader",
    "Snapshot",
    "dts_of_keys",
    "list_objects",
    "list_partitions",
]

#: Concurrent GETs while reading a partition (each waits on the store, not the CPU).
DEFAULT_READ_THREADS = 16
_JSON = "interview.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListedObject:
    key: str
    etag: str


def list_objects(store: ObjectStore, prefix: str) -> Iterator[ListedObject]:
    """Every object under ``prefix`` with the ETag the listing gives."""
    paginator = store.client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield ListedObject(obj["Key"], str(obj.get("ETag", "")))


def list_partitions(store: ObjectStore, prefix: str) -> set[str]:
    """The ``dt`` values of the ``dt=<value>/`` folders directly under ``prefix``."""
    found: set[str] = set()
    paginator = store.client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            name = common["Prefix"][len(prefix) :].rstrip("/")
            if name.startswith("dt="):
                found.add(name[3:])
    return found


def dts_of_keys(layout: LakeLayout, keys: Iterable[str]) -> set[str]:
    """The ``dt`` partitions of the published-interview keys among ``keys`` (others ignored)."""
    base = layout.interviews_prefix
    found = set()
    for key in keys:
        if key.startswith(base) and key[len(base) :].startswith("dt="):
            found.add(key[len(base) + 3 :].split("/", 1)[0])
    return found


#: A row-cache key: an ``interview.json`` key, its listed ETag and the interview's asset count
#: (rows are a pure function of the bytes and the asset count).
CacheKey = tuple[str, str, int]


@dataclass(frozen=True)
class Counted:
    """One interview the curated partition counts: its cache key and its rows."""

    key: CacheKey
    #: None: the rows are those of ``key[0]`` in the partition's current curated files.
    rows: TableRows | None


@dataclass(frozen=True)
class Snapshot:
    """A raw partition as read: the interviews counted (ordered by key), and a fingerprint:
    the cache key of each (rows are a function of it), so equal fingerprints mean equal
    curated files, however many indexes were read to decide what counts."""

    counted: list[Counted]
    fingerprint: tuple[Any, ...]
    #: Index documents read (the rest were vouched for by the row cache).
    index_reads: int = 0
    #: ``interview.json`` bodies read (the rest came from the row cache).
    body_reads: int = 0

    @property
    def interviews(self) -> list[TableRows]:
        """The rows of each counted interview, for :func:`build_files` (a reader with no
        sidecar remembered, as a fresh one, has them all)."""
        if any(c.rows is None for c in self.counted):
            raise ValueError("rows held by the curated files: use Curator.rebuild")
        return [c.rows for c in self.counted if c.rows is not None]


@dataclass(frozen=True)
class _Candidate:
    interview_id: str
    role: str
    key: str
    etag: str
    asset_count: int

    @property
    def cache_key(self) -> CacheKey:
        return (self.key, self.etag, self.asset_count)


class PartitionReader:
    """Reads raw partitions of one lake for the curator; safe to share between threads.

    It keeps the rows of every copy it counted by (key, ETag, asset count), and which (key, ETag)
    the index published. A copy the index once published at a key is still the published one
    unless a landing of its id is unfinished, and an unfinished landing is named by a journal
    (``docs/lake.md``, "Exactness"): so when ``trust_journals`` (the store honours conditional
    writes, hence the writers keep journals) an index is read only for an id a journal names, an
    id listed twice, or a copy not vouched for.
    """

    def __init__(
        self, store: ObjectStore, layout: LakeLayout, threads: int = DEFAULT_READ_THREADS
    ) -> None:
        self.store = store
        self.layout = layout
        self.threads = threads
        self._lock = threading.Lock()
        #: (key, ETag, asset count) -> rows computed from those bytes.
        self._rows: dict[CacheKey, TableRows | None] = {}
        #: (key, ETag) of copies the index was seen publishing.
        self._vouched: set[tuple[str, str]] = set()
        #: (journal key, ETag) -> the ids it names.
        self._journals: dict[tuple[str, str], frozenset[str]] = {}

    def remember(self, key: CacheKey, rows: TableRows | None = None) -> None:
        """A copy the index published, with its rows (None: those in the current curated files,
        as their sidecar vouches)."""
        with self._lock:
            self._rows[key] = rows
            self._vouched.add(key[:2])

    def _candidates(self, dt: str) -> list[_Candidate]:
        base = self.layout.partition_prefix(dt)
        jsons: dict[tuple[str, str], ListedObject] = {}
        assets: dict[tuple[str, str], int] = {}
        for obj in list_objects(self.store, base):
            parts = obj.key[len(base) :].split("/")
            if len(parts) < 3 or not parts[0].startswith("role="):
                continue
            directory = (parts[0][len("role=") :], parts[1])
            if len(parts) == 3 and parts[2] == _JSON:
                jsons[directory] = obj
            elif len(parts) == 4 and parts[2] == "assets":
                assets[directory] = assets.get(directory, 0) + 1
        return [
            _Candidate(interview_id, role, obj.key, obj.etag, assets.get((role, interview_id), 0))
            for (role, interview_id), obj in sorted(jsons.items())
        ]

    def _journal_listing(self) -> set[tuple[str, str]]:
        return {(o.key, o.etag) for o in list_objects(self.store, self.layout.journal_prefix)}

    def _journal_ids(self, listed: set[tuple[str, str]]) -> set[str] | None:
        """Every id the listed journals name; None if one cannot be read as a journal."""
        ids: set[str] = set()
        for key, etag in sorted(listed):
            with self._lock:
                known = self._journals.get((key, etag))
            if known is None:
                try:
                    journal = read_journal(self.store, key, "")
                except LakeError:
                    log.warning("%s is not a chunk journal: reading every index", key)
                    return None
                if journal is None:  # closed since the listing
                    continue
                known = frozenset(journal.directories) | frozenset(journal.contested)
                with self._lock:
                    self._journals[(key, journal.etag)] = known
            ids |= known
        return ids

    def _read(
        self, dt: str, candidate: _Candidate, check_index: bool
    ) -> tuple[Counted | None, str | None, bool, bool]:
        """The copy's rows if it counts (else None), the ETag of the index document it was
        decided on (None if not read), and whether the index and the body were read."""
        index_etag: str | None = None
        ref = (candidate.key, candidate.etag)
        with self._lock:
            vouched = ref in self._vouched
            cached = candidate.cache_key in self._rows
            rows = self._rows.get(candidate.cache_key)
        if check_index or not vouched:
            doc, index_etag = read_index(self.store, self.layout, candidate.interview_id)
            if doc is None or doc.get("state") != PUBLISHED or doc.get("key") != candidate.key:
                return None, index_etag, True, False
        if cached:
            with self._lock:
                self._vouched.add(ref)
            return Counted(candidate.cache_key, rows), index_etag, check_index or not vouched, False
        found = self.store.get(candidate.key)
        if found is None:  # removed since the listing: its index no longer publishes it
            return None, index_etag, index_etag is not None, True
        body, etag = found
        raw = RawInterview(
            interview_id=candidate.interview_id,
            dt=dt,
            role=candidate.role,
            key=candidate.key,
            sha256=hashlib.sha256(body).hexdigest(),
            interview=self._parse(body, candidate),
            asset_count=candidate.asset_count,
        )
        rows = interview_rows(raw)
        cache_key = (candidate.key, etag, candidate.asset_count)
        with self._lock:
            self._rows[cache_key] = rows
            self._vouched.add((candidate.key, etag))
        return Counted(cache_key, rows), index_etag, index_etag is not None, True

    def _parse(self, body: bytes, candidate: _Candidate) -> Interview:
        """The typed model of a published body. Its bytes passed the strict JSON check when
        they were landed, so the plain (four times faster) parser reads the same document."""
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError(f"JSON {type(data).__name__}, not an object")
            return Interview.model_validate(data)
        except ValueError as exc:  # ValidationError is a ValueError
            message = " ".join(str(exc).split())[:300]
            raise CurateError(
                f"s3://{self.store.bucket}/{candidate.key} (interview {candidate.interview_id!r}) "
                f"is published but cannot be read: {message}"
            ) from None

    def read(self, dt: str, *, trust_journals: bool = False) -> Snapshot:
        """Every interview the index publishes in partition ``dt`` (ordered by key), with the
        fingerprint of what was read.

        ``trust_journals``: read the index only where a copy other than the published one can
        exist (see the class doc); the journals are listed before and after the partition, so
        a landing under way at any moment of the listing is seen.
        """
        journals: set[tuple[str, str]] = set()
        if trust_journals:
            journals = self._journal_listing()
        candidates = self._candidates(dt)
        named: set[str] | None = None
        if trust_journals:
            journals |= self._journal_listing()
            named = self._journal_ids(journals)
        listed_ids = Counter(c.interview_id for c in candidates)

        def one(c: _Candidate) -> tuple[Counted | None, str | None, bool, bool]:
            check = named is None or c.interview_id in named or listed_ids[c.interview_id] > 1
            return self._read(dt, c, check)

        found: list[tuple[Counted | None, str | None, bool, bool]]
        if self.threads <= 1 or len(candidates) <= 1:
            found = [one(c) for c in candidates]
        else:
            with ThreadPoolExecutor(min(self.threads, len(candidates))) as pool:
                found = list(pool.map(one, candidates))
        counted = [c for c, _, _, _ in found if c is not None]
        return Snapshot(
            counted,
            tuple(c.key for c in counted),
            index_reads=sum(1 for f in found if f[2]),
            body_reads=sum(1 for f in found if f[3]),
        )

    def forget(self, dt: str) -> None:
        """Drop the rows and vouchers of ``dt`` (when its rebuild is done)."""
        base = self.layout.partition_prefix(dt)
        with self._lock:
            for cache_key in [k for k in self._rows if k[0].startswith(base)]:
                del self._rows[cache_key]
            self._vouched = {v for v in self._vouched if not v[0].startswith(base)}
