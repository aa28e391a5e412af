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
import json
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_qode.lake.curated.parquet import read_parquet_bytes
from airflow_provider_qode.lake.curated.rows import TableRows
from airflow_provider_qode.lake.curated.schemas import SCHEMAS, TABLES
from airflow_provider_qode.lake.curated.source import CacheKey
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.records import json_bytes

__all__ = ["entries_of", "rows_by_raw_key", "sidecar_bytes", "sidecar_key"]


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
