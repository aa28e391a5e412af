"""What one chunk leaves beside the interviews: its manifest, its quality report, and the
record of every object written, kept while it lands (see ``docs/lake.md#manifests``)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.store import ObjectStore

__all__ = [
    "PUBLISHED",
    "QUARANTINED",
    "REPORT",
    "ManifestEntry",
    "RunRecords",
    "WrittenObject",
    "iso",
    "json_bytes",
    "sha256",
]

PUBLISHED = "published"
QUARANTINED = "quarantined"
REPORT = "report"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1, default=str).encode()


def iso(value: datetime | date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


@dataclass(frozen=True)
class WrittenObject:
    """One object now in S3, with the size and SHA-256 of the bytes sent."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ManifestEntry:
    """One line of the manifest.

    ``verdict``: ``published``, ``quarantined`` or ``report``. ``kind``: ``interview``, ``asset``,
    ``index``, ``reasons``, ``quality_json`` or ``quality_html``. ``action``: ``written``, or
    ``unchanged`` when identical bytes were already at that key and the write was skipped.
    """

    key: str
    size: int
    sha256: str
    verdict: str
    kind: str
    interview_id: str | None = None
    action: str = "written"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RunRecords:
    """The objects one chunk wrote and deleted (thread-safe), and the chunk's report files."""

    def __init__(
        self,
        store: ObjectStore,
        layout: LakeLayout,
        *,
        dag_id: str,
        run_id: str,
        chunk: str,
        run_date: str,
    ) -> None:
        self.store = store
        self.layout = layout
        self.dag_id = dag_id
        self.run_id = run_id
        self.chunk = chunk
        self.run_date = run_date
        self._lock = threading.Lock()
        self._entries: list[ManifestEntry] = []
        self._deleted: list[str] = []

    @property
    def entries(self) -> list[ManifestEntry]:
        """Each object written (or found unchanged) and not deleted since, once: its last write."""
        with self._lock:
            latest = {e.key: e for e in self._entries}
        return list(latest.values())

    @property
    def deleted(self) -> list[str]:
        with self._lock:
            return list(self._deleted)

    def add(self, entry: ManifestEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def removed(self, keys: list[str]) -> None:
        gone = set(keys)
        with self._lock:
            self._deleted.extend(keys)
            self._entries = [e for e in self._entries if e.key not in gone]

    def put(
        self,
        key: str,
        body: bytes,
        *,
        verdict: str,
        kind: str,
        interview_id: str | None,
        content_type: str = "application/json",
    ) -> WrittenObject:
        """One PUT through the store, recorded for the manifest."""
        self.store.put(key, body, content_type)
        return self.note(key, body, verdict=verdict, kind=kind, interview_id=interview_id)

    def note(
        self, key: str, body: bytes, *, verdict: str, kind: str, interview_id: str | None
    ) -> WrittenObject:
        """Record ``body``, just written at ``key``, for the manifest."""
        written = WrittenObject(key, len(body), sha256(body))
        self.add(ManifestEntry(key, written.size, written.sha256, verdict, kind, interview_id))
        return written

    def write_quality_report(
        self, json_data: bytes, html_data: bytes | None = None
    ) -> tuple[str, ...]:
        """Store the chunk's quality report (JSON, and Data Docs HTML when given)."""
        json_key, html_key = self.layout.quality_keys(self.dag_id, self.run_id, self.chunk)
        keys = [
            self.put(
                json_key, json_data, verdict=REPORT, kind="quality_json", interview_id=None
            ).key
        ]
        if html_data is not None:
            html = self.put(
                html_key,
                html_data,
                verdict=REPORT,
                kind="quality_html",
                interview_id=None,
                content_type="text/html; charset=utf-8",
            )
            keys.append(html.key)
        return tuple(keys)

    def write_manifest(
        self,
        entries: Iterable[ManifestEntry] | None,
        *,
        written_at: str,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Write ``_manifests/<dag_id>/<run_id>/<chunk>.json``; returns its key."""
        objects = [e.to_dict() for e in (self.entries if entries is None else entries)]
        interviews: dict[str, set[str]] = {PUBLISHED: set(), QUARANTINED: set()}
        for entry in objects:
            if entry["kind"] == "interview" and entry["verdict"] in interviews:
                interviews[entry["verdict"]].add(entry["interview_id"])
        deleted = self.deleted
        doc = {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "chunk": self.chunk,
            "run_date": self.run_date,
            "bucket": self.store.bucket,
            "prefix": self.layout.prefix,
            "written_at": written_at,
            "counts": {
                "published": len(interviews[PUBLISHED]),
                "quarantined": len(interviews[QUARANTINED]),
                "objects": len(objects),
                "bytes": sum(e["size"] for e in objects if e["action"] == "written"),
                "deleted": len(deleted),
            },
            "objects": objects,
            "deleted": deleted,
            **(extra or {}),
        }
        key = self.layout.manifest_key(self.dag_id, self.run_id, self.chunk)
        self.store.put(key, json_bytes(doc))
        return key
