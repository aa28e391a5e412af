"""The row cache of a curated partition: which raw copies its files were built from.

Rows are a pure function of an ``interview.json``'s bytes (and its asset count), and S3 gives a
new ETag to every new body at a key, so rows built earlier from a copy with the same key and
ETag are still right. The **sidecar** ``<prefix>/_curated/dt=<D>.json`` lists, for the
partition's current curated files, the ``[raw key, ETag, asset count]`` of every interview
they hold and the SHA-256 of each file. A sidecar counts only while the files still have those
SHA-256s, so one left behind by a crash or a racing rebuild is ignored, never trusted: a cache
miss only costs a GET. It lies outside ``curated/``, so Athena and the readers never see it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_qode.lake.curated.parquet import parquet_bytes, read_parquet_bytes
from airflow_provider_qode.lake.curated.rows import (
    RawInterview,
    TableRows,
    interview_rows,
    to_table,
)
from airflow_provider_qode.lake.curated.schemas import SCHEMAS, TABLES
from airflow_provider_qode.lake.curated.source import CacheKey
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.records import json_bytes
from airflow_provider_qode.lake.store import ObjectStore

if TYPE_CHECKING:
    from airflow_provider_qode.lake.writer import LakeWriter, PublishResult
    from airflow_provider_qode.models import Interview

__all__ = [
    "entries_of",
    "fragment_bytes",
    "fragment_prefix",
    "fragment_rows",
    "rows_by_raw_key",
    "sidecar_bytes",
    "sidecar_key",
    "stage_published",
    "stage_rows",
]

_SIDECAR = "sidecar.json"
log = logging.getLogger(__name__)


def sidecar_key(layout: LakeLayout, dt: str) -> str:
    return f"{layout.prefix}_curated/dt={dt}.json"


def _digest(files: Mapping[str, bytes]) -> dict[str, str]:
    return {table: hashlib.sha256(body).hexdigest() for table, body in sorted(files.items())}


def sidecar_bytes(files: Mapping[str, bytes], entries: Iterable[CacheKey]) -> bytes:
    """The sidecar of curated ``files`` built from the copies ``entries``."""
    doc = {"files": _digest(files), "entries": sorted([list(e) for e in entries])}
    return json_bytes(doc)


def entries_of(body: bytes | None, files: Mapping[str, bytes]) -> set[CacheKey] | None:
    """The copies ``files`` were built from, if the sidecar ``body`` describes exactly them."""
    if body is None or set(files) != set(TABLES):
        return None
    try:
        doc: Any = json.loads(body)
        if doc.get("files") != _digest(files):
            return None
        return {(str(k), str(e), int(n)) for k, e, n in doc["entries"]}
    except (ValueError, TypeError, AttributeError, KeyError):
        return None


def rows_by_raw_key(files: Mapping[str, bytes]) -> dict[str, TableRows]:
    """Every row of the curated ``files``, grouped by the raw key it came from."""
    found: dict[str, TableRows] = {}
    for table in TABLES:
        data = read_parquet_bytes(files[table]).select(SCHEMAS[table].names)
        columns = [data.column(name).to_pylist() for name in SCHEMAS[table].names]
        keys = data.column("raw_key").to_pylist()
        for raw_key, row in zip(keys, zip(*columns, strict=True), strict=True):
            found.setdefault(raw_key, {t: [] for t in TABLES})[table].append(tuple(row))
    return found


# --- fragments: rows staged by the landing task ------------------------------------------------


def fragment_prefix(layout: LakeLayout, dt: str) -> str:
    return f"{layout.prefix}_curated/fragments/dt={dt}/"


def fragment_bytes(files: Mapping[str, bytes], entries: Iterable[CacheKey]) -> bytes:
    """One zip: the partition-shaped files of some copies, and their sidecar."""
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(_SIDECAR, sidecar_bytes(files, entries))
        for table, body in sorted(files.items()):
            archive.writestr(f"{table}.parquet", body)
    return sink.getvalue()


def fragment_rows(body: bytes) -> dict[CacheKey, TableRows]:
    """The rows a fragment holds by cache key; empty if it is not a whole fragment."""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            files = {t: archive.read(f"{t}.parquet") for t in TABLES}
            entries = entries_of(archive.read(_SIDECAR), files)
        if entries is None:
            return {}
        rows = rows_by_raw_key(files)
        return {entry: rows[entry[0]] for entry in entries if entry[0] in rows}
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return {}


def stage_rows(
    store: ObjectStore,
    layout: LakeLayout,
    published: Iterable[tuple[str, str, str, str, str, str, int, Interview]],
) -> list[str]:
    """Write the curated rows of copies just landed, one fragment per date partition.

    ``published``: ``(interview id, raw key, ETag S3 returned for its PUT, sha256, dt, role,
    asset count, model parsed from those bytes)``. The curator takes a fragment's rows for a
    copy whose listed key, ETag and asset count match, so nothing here can make a table wrong:
    a fragment that is stale, missing or unreadable is a cache miss. Returns the keys written.
    """
    by_dt: dict[str, dict[CacheKey, TableRows]] = {}
    for interview_id, key, etag, sha, dt, role, assets, model in published:
        raw = RawInterview(interview_id, dt, role, key, sha, model, assets)
        by_dt.setdefault(dt, {})[(key, etag, assets)] = interview_rows(raw)
    written = []
    for dt, entries in sorted(by_dt.items()):
        rows: TableRows = {t: [] for t in TABLES}
        for found in entries.values():
            for table in TABLES:
                rows[table].extend(found[table])
        files = {t: parquet_bytes(to_table(t, rows[t])) for t in TABLES}
        key = f"{fragment_prefix(layout, dt)}{uuid.uuid4().hex}.zip"
        store.put(key, fragment_bytes(files, entries), "application/zip")
        written.append(key)
    return written


def stage_published(
    writer: LakeWriter, published: Iterable[tuple[PublishResult, Interview]]
) -> None:
    """The landing task's one call: stage the rows of what it published (never fails it)."""
    try:
        stage_rows(
            writer.store,
            writer.layout,
            [
                (r.interview_id, r.key, etag, r.sha256, r.dt, r.role, len(r.assets), model)
                for r, model in published
                if not r.unchanged and (etag := writer.json_etags.get(r.key))
            ],
        )
    except Exception as exc:  # a cache: the curator reads raw instead
        log.warning("curated rows not staged (the curator will read raw): %r", exc)
