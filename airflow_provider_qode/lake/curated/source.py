"""Reading one raw date partition as the curated layer counts it: only what the index publishes.

A listing of ``interviews/dt=D/`` can show an interview twice during a move (the new copy is
written before the old one goes) and a leftover directory after a crash. ``_index/<id>.json`` is
authoritative (``docs/lake.md``), so an ``interview.json`` counts only when its id's index is
``published`` at exactly that key. Parsed interviews are kept by (key, ETag), so reading the
same partition again costs a listing and the index reads, not the parsing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow_provider_qode.lake.curated.rows import CurateError, RawInterview
from airflow_provider_qode.lake.index import read_index
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.records import PUBLISHED
from airflow_provider_qode.lake.store import ObjectStore
from airflow_provider_qode.models import Interview

__all__ = [
    "DEFAULT_READ_THREADS",
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


@dataclass(frozen=True)
class Snapshot:
    """A raw partition as read: the interviews counted, and a fingerprint of everything the
    reading depended on (each JSON's key, listed ETag and asset count, each index ETag), so
    equal fingerprints mean equal curated files without building them again."""

    interviews: list[RawInterview]
    fingerprint: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class _Candidate:
    interview_id: str
    role: str
    key: str
    etag: str
    asset_count: int


class PartitionReader:
    """Reads raw partitions of one lake for the curator; safe to share between threads."""

    def __init__(
        self, store: ObjectStore, layout: LakeLayout, threads: int = DEFAULT_READ_THREADS
    ) -> None:
        self.store = store
        self.layout = layout
        self.threads = threads
        self._lock = threading.Lock()
        #: (key, ETag) -> the interview parsed from those bytes.
        self._parsed: dict[tuple[str, str], RawInterview] = {}

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

    def _read(self, dt: str, candidate: _Candidate) -> tuple[RawInterview | None, str | None]:
        """The interview if its index publishes ``candidate.key`` (else None), and the ETag of
        the index document it was decided on."""
        doc, index_etag = read_index(self.store, self.layout, candidate.interview_id)
        if doc is None or doc.get("state") != PUBLISHED or doc.get("key") != candidate.key:
            return None, index_etag
        with self._lock:
            cached = self._parsed.get((candidate.key, candidate.etag))
        if cached is not None and cached.asset_count == candidate.asset_count:
            return cached, index_etag
        found = self.store.get(candidate.key)
        if found is None:  # removed since the listing: its index no longer publishes it
            return None, index_etag
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
        with self._lock:
            self._parsed[(candidate.key, etag)] = raw
        return raw, index_etag

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

    def read(self, dt: str) -> Snapshot:
        """Every interview the index publishes in partition ``dt`` (ordered by key), with the
        fingerprint of what was read."""
        candidates = self._candidates(dt)
        found: list[tuple[RawInterview | None, str | None]]
        if self.threads <= 1 or len(candidates) <= 1:
            found = [self._read(dt, c) for c in candidates]
        else:
            with ThreadPoolExecutor(min(self.threads, len(candidates))) as pool:
                found = list(pool.map(lambda c: self._read(dt, c), candidates))
        fingerprint = tuple(
            (c.key, c.etag, c.asset_count, etag, raw is not None)
            for c, (raw, etag) in zip(candidates, found, strict=True)
        )
        return Snapshot([raw for raw, _ in found if raw is not None], fingerprint)

    def forget(self, dt: str) -> None:
        """Drop the parsed interviews of ``dt`` (when its rebuild is done)."""
        base = self.layout.partition_prefix(dt)
        with self._lock:
            for cache_key in [k for k in self._parsed if k[0].startswith(base)]:
                del self._parsed[cache_key]
