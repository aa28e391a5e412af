"""Where things live in the lake: pure functions from an interview to its S3 keys.

Everything here is deterministic and does no I/O, so reruns and backfills compute the same keys
and the writer, the docs and downstream readers agree on one layout::

    <prefix>/interviews/dt=<YYYY-MM-DD>/role=<role>/<interview_id>/interview.json
    <prefix>/interviews/dt=<YYYY-MM-DD>/role=<role>/<interview_id>/assets/<name>
    <prefix>/quarantine/dt=<run date>/<interview_id>/interview.json + reasons.json
    <prefix>/_index/<interview_id>.json
    <prefix>/_manifests/<dag_id>/<run_id>/<chunk>.json
    <prefix>/_quality/<dag_id>/<run_id>/<chunk>.json + .html
    <prefix>/_journal/<dag_id>/<run_id>/<chunk>/<attempt>.json   (while a chunk lands)
    <prefix>/_probes/<token>     (for a moment: the writer's conditional-write probe)
    <prefix>/curated/<table>/dt=<YYYY-MM-DD>/part-0.parquet   (derived: lake/curated)

``dt`` is the UTC date of the interview's own ``timestamp`` (never the run date), so the same
interview lands at the same key whenever it is fetched. A timestamp outside the sane window
(before 2000, or more than a day after the moment the key is computed) gives no ``dt``.

Keys stay under S3's 1,024-byte limit by construction: prefix at most ``MAX_PREFIX_BYTES`` (256),
id at most 256 bytes (``models.MAX_ID_BYTES``), role at most 81 and asset names at most 128
characters, so the longest key (an asset) is about 760 bytes.

Role encoding (``role=<role>``), the rule exactly:

1. The title is the first of ``mapped_role_title``, ``role_title`` (order configurable) that is a
   string with something other than white space; with none, the partition is ``unknown``.
2. ``slug``: the title in Unicode NFKD form, combining marks and other non-ASCII characters
   dropped, lower-cased; every run of characters outside ``[a-z0-9]`` becomes one ``-``, and
   leading and trailing ``-`` are removed.
3. ``decode(slug)``: the slug's ``-``-separated words, each with its first letter upper-cased,
   joined by single spaces (``backend-developer`` -> ``Backend Developer``).
4. If the slug is non-empty, at most ``ROLE_SLUG_MAX_LENGTH`` characters, not ``unknown``, and
   ``decode(slug)`` equals the title exactly, the partition is the slug alone.
5. Otherwise it is ``<slug cut to ROLE_SLUG_MAX_LENGTH, trailing '-' removed>_<h>`` where ``<h>`` is
   the first ``ROLE_HASH_LENGTH`` hex digits of the SHA-256 of the exact title (UTF-8); the part
   before ``_`` may be empty.

So partitions match ``[a-z0-9-]*(_[0-9a-f]{32})?``, at most 81 characters. The encoding is
injective: plain slugs (rule 4) decode back to their one title, never contain ``_`` and are never
``unknown``; hashed ones (rule 5) differ whenever the titles' SHA-256 prefixes (128 bits) do, so
a collision needs about 2^64 titles (48 bits, the earlier length, fell to a 2^25 search).
``Backend Developer`` -> ``backend-developer``; ``backend developer`` ->
``backend-developer_<h>``; ``C++ Developer`` -> ``c-developer_<h>`` (``C Developer`` stays
``c-developer``); ``软件工程师`` -> ``_<h>``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_provider_qode.models import (
    check_interview_id,
    parse_timestamp,
    timestamp_window_problem,
)

__all__ = [
    "DEFAULT_ROLE_FIELDS",
    "MAX_PREFIX_BYTES",
    "ROLE_HASH_LENGTH",
    "ROLE_PATTERN",
    "ROLE_SLUG_MAX_LENGTH",
    "UNKNOWN_ROLE",
    "InvalidTimestampError",
    "LakeLayout",
    "asset_file_name",
    "check_dt",
    "encode_role",
    "interview_date",
    "key_segment",
    "normalize_prefix",
    "role_of",
    "role_title_of",
    "slugify",
    "valid_dts",
]

#: Interview fields tried in order for the role partition.
DEFAULT_ROLE_FIELDS: tuple[str, ...] = ("mapped_role_title", "role_title")
UNKNOWN_ROLE = "unknown"
ROLE_SLUG_MAX_LENGTH = 48
ROLE_HASH_LENGTH = 32
#: Longest lake prefix, in UTF-8 bytes (see the module doc on key length).
MAX_PREFIX_BYTES = 256
#: Every value :func:`encode_role` can return matches this.
ROLE_PATTERN = re.compile(
    rf"[a-z0-9-]{{0,{ROLE_SLUG_MAX_LENGTH}}}(_[0-9a-f]{{{ROLE_HASH_LENGTH}}})?"
)

_NON_SLUG = re.compile(r"[^a-z0-9]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Characters kept verbatim in dag ids, run ids and chunk names; anything else is %-escaped.
_SEGMENT_SAFE = "-_.~:+=@,"
_TABLE = re.compile(r"[a-z_]+")


class InvalidTimestampError(ValueError):
    """An interview timestamp that cannot give a ``dt`` partition (missing, naive or unreadable)."""


# --- dt ----------------------------------------------------------------------------------------


def interview_date(timestamp: object) -> str:
    """The ``dt`` partition: UTC date of an ISO 8601 timestamp with a zone (``Z`` allowed).

    A timestamp without a zone is refused rather than guessed: a wrong guess would put the
    interview under another date on a machine with another local zone. So is one outside the
    sane window (``models.timestamp_window_problem``): no ``dt=0001-01-01`` partitions.
    """
    if not isinstance(timestamp, str) or not timestamp.strip():
        raise InvalidTimestampError(
            f"interview timestamp is missing or not a string: {timestamp!r}"
        )
    try:
        parsed = parse_timestamp(timestamp)
    except ValueError as exc:
        raise InvalidTimestampError(f"interview timestamp: {exc}") from None
    problem = timestamp_window_problem(parsed)
    if problem:
        raise InvalidTimestampError(f"interview timestamp {timestamp!r}: {problem}")
    return parsed.date().isoformat()


def run_date_text(run_date: date | datetime | str) -> str:
    """``YYYY-MM-DD`` for a run date given as a date, an aware datetime (taken in UTC) or text."""
    if isinstance(run_date, datetime):
        if run_date.tzinfo is not None:
            run_date = run_date.astimezone(UTC)
        return run_date.date().isoformat()
    if isinstance(run_date, date):
        return run_date.isoformat()
    try:
        return date.fromisoformat(run_date.strip()[:10]).isoformat()
    except (AttributeError, ValueError):
        raise ValueError(f"run date {run_date!r} is not YYYY-MM-DD") from None


def check_dt(dt: str) -> str:
    """Return ``dt`` if it is a ``YYYY-MM-DD`` partition value of a real date, else raise."""
    if not isinstance(dt, str) or not _DATE.fullmatch(dt):
        raise ValueError(f"dt partition {dt!r} is not YYYY-MM-DD")
    try:
        date.fromisoformat(dt)
    except ValueError:
        raise ValueError(f"dt partition {dt!r} is not a real date") from None
    return dt


def valid_dts(values: Iterable[object]) -> list[str]:
    """The values that pass :func:`check_dt`, sorted, each once; anything else is left out."""
    valid = set()
    for value in values:
        try:
            valid.add(check_dt(value))  # type: ignore[arg-type]
        except ValueError:
            continue
    return sorted(valid)


# --- role --------------------------------------------------------------------------------------


def role_title_of(interview: Any, fields: Sequence[str] = DEFAULT_ROLE_FIELDS) -> str | None:
    """The first of ``fields`` on ``interview`` holding a non-blank string, else None."""
    for field in fields:
        value = getattr(interview, field, None)
        if isinstance(value, str) and value.strip():
            return value
    return None


def slugify(title: str) -> str:
    """Step 2 of the role rule: ASCII, lower case, ``[a-z0-9]`` runs joined by single ``-``."""
    ascii_text = (
        unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    )
    return _NON_SLUG.sub("-", ascii_text).strip("-")


def _decode_slug(slug: str) -> str:
    return " ".join(word[:1].upper() + word[1:] for word in slug.split("-"))


def _title_hash(title: str) -> str:
    # surrogatepass: any Python str (even one with lone surrogates) has exactly one byte form.
    return hashlib.sha256(title.encode("utf-8", "surrogatepass")).hexdigest()[:ROLE_HASH_LENGTH]


def encode_role(title: str | None) -> str:
    """The role partition of ``title`` (None or blank: ``unknown``); rule in the module doc."""
    if title is None or not title.strip():
        return UNKNOWN_ROLE
    slug = slugify(title)
    if (
        slug
        and len(slug) <= ROLE_SLUG_MAX_LENGTH
        and slug != UNKNOWN_ROLE
        and _decode_slug(slug) == title
    ):
        return slug
    head = slug[:ROLE_SLUG_MAX_LENGTH].rstrip("-")
    return f"{head}_{_title_hash(title)}"


def role_of(interview: Any, fields: Sequence[str] = DEFAULT_ROLE_FIELDS) -> str:
    """The encoded role partition of ``interview``."""
    return encode_role(role_title_of(interview, fields))


# --- names and prefixes ------------------------------------------------------------------------


def normalize_prefix(prefix: str | None) -> str:
    """``""`` or ``"a/b/"``: empty segments dropped; ``.``/``..``/control characters and more
    than ``MAX_PREFIX_BYTES`` refused."""
    if not prefix:
        return ""
    parts = [part for part in prefix.split("/") if part]
    for part in parts:
        if part in (".", "..") or not part.isprintable():
            raise ValueError(f"lake prefix {prefix!r} has an unsafe segment {part!r}")
    normalized = "".join(f"{part}/" for part in parts)
    if len(normalized.encode("utf-8")) > MAX_PREFIX_BYTES:
        raise ValueError(f"lake prefix is longer than {MAX_PREFIX_BYTES} bytes in UTF-8")
    return normalized


def key_segment(value: object) -> str:
    """One key segment from a dag id, run id or chunk name: kept readable, %-escaped if needed.

    Escaping (``%`` itself included) is injective, so two run ids never share a manifest.
    """
    text = str(value)
    if not text:
        raise ValueError("a key segment may not be empty")
    escaped = quote(text, safe=_SEGMENT_SAFE)
    if escaped in (".", ".."):
        escaped = escaped.replace(".", "%2E")
    return escaped


def asset_file_name(name: str, source: str | None = None) -> str:
    """``<name>.<ext>``: the extension of ``source``'s path when it is short and alphanumeric.

    ``name`` is the asset's name (``identity_screenshot``); ``source`` its URL or relative path.
    An odd extension (``.php?x=1``, ``.png%2F..``) is dropped rather than cleaned, so the key
    never carries attacker-chosen text.
    """
    ext = ""
    if source:
        path = urlsplit(source).path
        last = path.rsplit("/", 1)[-1]
        if "." in last:
            candidate = last.rsplit(".", 1)[1]
            if _EXTENSION.fullmatch(candidate):
                ext = "." + candidate.lower()
    file_name = f"{name}{ext}"
    check_asset_name(file_name)
    return file_name


def check_asset_name(name: str) -> str:
    """Return ``name`` if it is a safe file name for ``assets/``, else raise ``ValueError``."""
    if not isinstance(name, str) or not _ASSET_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"asset name {name!r} is not a safe file name")
    return name


def _chunk_path(dag_id: str, run_id: str, chunk: object) -> str:
    """``<dag_id>/<run_id>/<chunk>``, each segment escaped: one chunk's place under a prefix."""
    return f"{key_segment(dag_id)}/{key_segment(run_id)}/{key_segment(chunk)}"


# --- keys --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LakeLayout:
    """Every key of the lake under one ``prefix``; ids are checked before any key is built."""

    prefix: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", normalize_prefix(self.prefix))

    def interview_base(self, interview_id: str, dt: str, role: str) -> str:
        """The directory (ending in ``/``) holding one published interview and its assets."""
        check_interview_id(interview_id)
        if not ROLE_PATTERN.fullmatch(role) or not role:
            raise ValueError(f"role partition {role!r} is not an encoded role")
        if not _DATE.fullmatch(dt):
            raise ValueError(f"dt partition {dt!r} is not YYYY-MM-DD")
        return f"{self.prefix}interviews/dt={dt}/role={role}/{interview_id}/"

    def interview_base_for(
        self, interview_id: str, interview: Any, role_fields: Sequence[str] = DEFAULT_ROLE_FIELDS
    ) -> str:
        """:meth:`interview_base` from the interview's own timestamp and role title."""
        return self.interview_base(
            interview_id, interview_date(interview.timestamp), role_of(interview, role_fields)
        )

    def published_dt(self, key: str) -> str | None:
        """The ``dt`` of a key under this lake's published ``interviews/``, else None."""
        head = f"{self.prefix}interviews/dt="
        if not key.startswith(head):
            return None
        dt = key[len(head) :].split("/", 1)[0]
        return dt if _DATE.fullmatch(dt) else None

    @staticmethod
    def interview_key(base: str) -> str:
        return f"{base}interview.json"

    @staticmethod
    def asset_key(base: str, name: str) -> str:
        return f"{base}assets/{check_asset_name(name)}"

    def quarantine_base(self, run_date: date | datetime | str, safe_id: str) -> str:
        check_interview_id(safe_id)
        return f"{self.prefix}quarantine/dt={run_date_text(run_date)}/{safe_id}/"

    @staticmethod
    def reasons_key(quarantine_base: str) -> str:
        return f"{quarantine_base}reasons.json"

    def index_key(self, interview_id: str) -> str:
        check_interview_id(interview_id)
        return f"{self.prefix}_index/{interview_id}.json"

    def manifest_key(self, dag_id: str, run_id: str, chunk: object) -> str:
        return f"{self.prefix}_manifests/{_chunk_path(dag_id, run_id, chunk)}.json"

    @property
    def journal_prefix(self) -> str:
        return f"{self.prefix}_journal/"

    def journal_key(self, dag_id: str, run_id: str, chunk: object, attempt: str) -> str:
        """One landing attempt's list of the directories it may write (see the writer)."""
        chunk_path = _chunk_path(dag_id, run_id, chunk)
        return f"{self.journal_prefix}{chunk_path}/{key_segment(attempt)}.json"

    def probe_key(self, token: str) -> str:
        """A scratch key the writer creates and deletes at once to learn what the store can do."""
        return f"{self.prefix}_probes/{key_segment(token)}"

    def quality_keys(self, dag_id: str, run_id: str, chunk: object) -> tuple[str, str]:
        """``(json key, html key)`` of one chunk's quality report."""
        base = f"{self.prefix}_quality/{_chunk_path(dag_id, run_id, chunk)}"
        return f"{base}.json", f"{base}.html"

    @property
    def interviews_prefix(self) -> str:
        """Where the published interviews' date partitions start."""
        return f"{self.prefix}interviews/"

    def partition_prefix(self, dt: str) -> str:
        """One date partition of published interviews (every role under it)."""
        return f"{self.interviews_prefix}dt={check_dt(dt)}/"

    def curated_prefix(self, table: str) -> str:
        """Where one curated table's date partitions start (``lake/curated``)."""
        if not _TABLE.fullmatch(table):
            raise ValueError(f"curated table name {table!r} is not [a-z_]+")
        return f"{self.prefix}curated/{table}/"

    def curated_key(self, table: str, dt: str) -> str:
        """The one Parquet file of a curated table's date partition."""
        return f"{self.curated_prefix(table)}dt={check_dt(dt)}/part-0.parquet"
