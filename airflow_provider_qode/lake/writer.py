"""The S3 writer of the lake: publish, quarantine, index, manifest, with exactly-once keys.

One :class:`LakeWriter` serves one batch (one chunk of one DAG run) and may be shared by the
threads of a pool. The layout is in :mod:`airflow_provider_qode.lake.layout`.

How an interview is published (each step safe to crash after; a rerun finishes the job):

1. Every directory is recorded *before* anything is written there, so a crashed attempt can
   always be found and cleaned up. A chunk records all of its directories at once in a journal,
   ``_journal/<dag>/<run>/<chunk>/<attempt>.json`` (:meth:`LakeWriter.begin`), deleted when every
   id in it is final. Without a journal, :meth:`LakeWriter.plan` records the directory in the
   id's index under ``pending``, created with a conditional PUT when the id is new.
2. The caller streams the assets into that directory (:meth:`LakeWriter.put_asset_stream`).
3. :meth:`LakeWriter.publish` writes ``interview.json`` last, so a reader that sees the JSON sees
   every asset; then the index, now pointing at the new copy and listing every directory still to
   remove (an older copy after a move, a quarantine copy, an abandoned attempt); then removes
   those (JSON first, so a reader never sees a JSON without its assets); then clears the list.

For a journaled id the JSON and the index are first written with ``If-None-Match: *``: a new id
costs three requests (assets, JSON, index) and no read. When either already exists the index is
read and step 3 runs as above, so a rerun of identical bytes still rewrites nothing but the
assets. Conditional writes are probed once per writer (a scratch key under ``_probes/``); on a
store that ignores them there is no journal, and each index is read before it is written.

A journal left by an attempt that never finished is read by every later chunk: its directories
join the ``pending`` list of those ids when they come by again, and it is deleted by the chunk
that makes the last of its ids final.

The index document (``_index/<id>.json``) says where the interview is now: ``state``
(``published``, ``quarantined``, or ``pending`` before a first publish), ``key``, ``base``,
``dt``, ``role``, ``sha256``, ``size``, ``assets`` [{key, size, sha256}], ``published_at``,
``run_id``, ``dag_id``, ``quarantine`` (the quarantine copy, or null) and ``pending``
(directories to remove; empty between runs unless a run crashed). Readers should use ``key``
only when ``state`` is ``published``.

Every cleanup reads one known directory of one interview, never the whole bucket. The index is
read at most once per interview and written only when something changes.

Quarantine keeps the last good version: an interview published earlier and failing now keeps its
published copy; the failing bytes and reasons go to ``quarantine/dt=<run date>/<id>/`` and the
index records them. An interview has at most one quarantine copy (the latest; an older one is
removed), and a later successful publish removes it. Ids that cannot be keys are quarantined as
``_invalid-id-<sha256 prefix>`` with the original id in ``reasons.json``, and get no index.

Index documents are read-modify-written under a per-id lock inside one writer; two writers (two
tasks) must not handle the same id at the same time, which holds as DAG chunks hold disjoint ids.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import mimetypes
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from airflow_provider_qode.exceptions import QodeError
from airflow_provider_qode.lake.layout import (
    DEFAULT_ROLE_FIELDS,
    LakeLayout,
    interview_date,
    role_of,
    run_date_text,
)
from airflow_provider_qode.models import Interview, check_interview_id, interview_id_problem

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "LakeError",
    "LakeWriter",
    "ManifestEntry",
    "PublishPlan",
    "PublishResult",
    "QuarantineResult",
    "WrittenObject",
]

MiB = 1024 * 1024
#: S3 refuses multipart parts below 5 MiB (except the last one).
MIN_PART_SIZE = 5 * MiB
DEFAULT_PART_SIZE = 8 * MiB
MAX_PARTS = 10_000
INVALID_ID_PREFIX = "_invalid-id-"
#: Pooled S3 connections of a writer built by :meth:`LakeWriter.from_conn_id` (at least).
MIN_POOL_CONNECTIONS = 64
_NOT_PREFETCHED: Any = object()
#: What S3 (and moto, MinIO) answer when ``If-None-Match: *`` finds the key, or races a write.
_CONDITION_FAILED = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})

log = logging.getLogger(__name__)

PUBLISHED = "published"
QUARANTINED = "quarantined"
PENDING = "pending"
REPORT = "report"


class LakeError(QodeError):
    """The lake is in a state the writer will not act on (e.g. an unreadable index document)."""


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


@dataclass(frozen=True)
class PublishPlan:
    """Where an interview will be published; stream its assets under ``base``."""

    interview_id: str
    dt: str
    role: str
    base: str
    key: str
    #: An earlier attempt at this directory did not finish: publish sweeps it of stray objects.
    dirty: bool = False


@dataclass(frozen=True)
class PublishResult:
    interview_id: str
    key: str
    dt: str
    role: str
    sha256: str
    size: int
    assets: tuple[WrittenObject, ...]
    #: The same bytes and assets were already published at this key: nothing was rewritten.
    unchanged: bool
    #: Keys deleted: an older copy after a move, a quarantine copy, stray assets.
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuarantineResult:
    #: The id as received (``repr`` of it if it was not a string).
    interview_id: str
    #: The id used in keys: the id itself, or ``_invalid-id-<hash>`` for one unusable as a key.
    safe_id: str
    key: str
    reasons_key: str
    sha256: str
    size: int
    #: Where the last good version stays published, if it was published before.
    published_key: str | None = None
    removed: tuple[str, ...] = ()


@dataclass
class _Planned:
    plan: PublishPlan
    index: dict[str, Any] | None = field(default=None)
    #: In this writer's chunk journal: the index was neither read nor written yet.
    journaled: bool = False


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1, default=str).encode()


def _iso(value: datetime | date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


class LakeWriter:
    """Writes one batch into the lake under ``s3://<bucket>/<prefix>/``.

    ``s3`` is an Airflow ``S3Hook`` (its connection, endpoint and credentials are used through
    ``get_conn()``) or a boto3 S3 client. The boto3 client is thread-safe and shared by all
    threads; the writer's own state is guarded by locks. ``conditional_writes``: None probes the
    store once; False forces read-then-write for stores known to ignore ``If-None-Match``.
    """

    def __init__(
        self,
        s3: S3Hook | S3Client,
        bucket: str,
        prefix: str = "",
        *,
        dag_id: str,
        run_id: str,
        chunk: str | int,
        run_date: date | datetime | str,
        role_fields: Sequence[str] = DEFAULT_ROLE_FIELDS,
        part_size: int = DEFAULT_PART_SIZE,
        now: Callable[[], datetime] | None = None,
        conditional_writes: bool | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        get_conn = getattr(s3, "get_conn", None)
        self.client: S3Client = get_conn() if callable(get_conn) else s3  # type: ignore[assignment]
        self.bucket = bucket
        self.layout = LakeLayout(prefix)
        self.dag_id = dag_id
        self.run_id = run_id
        self.chunk = str(chunk)
        self.run_date = run_date_text(run_date)
        self.role_fields = tuple(role_fields)
        self.part_size = part_size
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._id_locks: dict[str, threading.Lock] = {}
        self._plans: dict[str, _Planned] = {}
        #: Index documents read ahead (:meth:`prefetch_index`), each used once then dropped.
        self._prefetched: dict[str, Any] = {}
        self._entries: list[ManifestEntry] = []
        self._deleted: list[str] = []
        #: None until probed (:attr:`conditional_writes`); True/False given skip the probe.
        self._conditional: bool | None = conditional_writes
        #: The chunk journal (:meth:`begin`): id -> directory, and its key once written.
        self._journaled: dict[str, str] = {}
        self._journal_key: str | None = None
        #: Journals of earlier attempts that never finished: id -> directories, key -> ids.
        self._leftover: dict[str, set[str]] = {}
        self._leftover_journals: dict[str, set[str]] = {}
        #: Ids whose index is final (published or quarantined, nothing pending).
        self._done: set[str] = set()

    @classmethod
    def from_conn_id(
        cls, aws_conn_id: str | None, bucket: str, prefix: str = "", **kwargs: Any
    ) -> LakeWriter:
        """A writer on the Airflow AWS connection ``aws_conn_id`` (honours ``endpoint_url``)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from botocore.config import Config

        hook = S3Hook(aws_conn_id=aws_conn_id)
        # botocore keeps 10 pooled connections by default: fewer than the threads of a chunk, so
        # connections would be discarded and reopened. Raise the pool, keep the rest of the
        # connection's own botocore config (retries, timeouts, addressing) as it is.
        config = hook.config
        pool = getattr(config, "max_pool_connections", None) or 10  # botocore sets it lazily
        if pool < MIN_POOL_CONNECTIONS:
            hook = S3Hook(
                aws_conn_id=aws_conn_id,
                config=config.merge(Config(max_pool_connections=MIN_POOL_CONNECTIONS)),
            )
        return cls(hook, bucket, prefix, **kwargs)

    # --- bookkeeping ---------------------------------------------------------------------------

    @property
    def entries(self) -> list[ManifestEntry]:
        """Each object this writer wrote (or found unchanged) and did not delete, once.

        A key written twice (an index updated in two steps) appears with its last write.
        """
        with self._lock:
            latest = {e.key: e for e in self._entries}
        return list(latest.values())

    @property
    def deleted(self) -> list[str]:
        with self._lock:
            return list(self._deleted)

    def _record(self, entry: ManifestEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def _id_lock(self, interview_id: str) -> threading.Lock:
        with self._lock:
            return self._id_locks.setdefault(interview_id, threading.Lock())

    def _timestamp(self) -> str:
        return self._now().astimezone(UTC).isoformat()

    # --- S3 primitives -------------------------------------------------------------------------

    def _put(
        self,
        key: str,
        body: bytes,
        *,
        verdict: str,
        kind: str,
        interview_id: str | None,
        content_type: str = "application/json",
        create: bool = False,
    ) -> WrittenObject:
        """One PUT, recorded for the manifest; ``create``: only if the key does not exist yet."""
        condition: dict[str, Any] = {"IfNoneMatch": "*"} if create else {}
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition
        )
        written = WrittenObject(key, len(body), _sha256(body))
        self._record(ManifestEntry(key, written.size, written.sha256, verdict, kind, interview_id))
        return written

    @property
    def conditional_writes(self) -> bool:
        """Whether the store honours ``If-None-Match: *`` on PUT (probed once, on first use).

        A store that ignored it would let a new id's pending record overwrite a live index, so
        anything but a refusal of the second PUT of a probe key counts as unsupported.
        """
        with self._lock:
            if self._conditional is not None:
                return self._conditional
        supported = self._probe_conditional_put()
        with self._lock:
            if self._conditional is None:
                self._conditional = supported
                log.info(
                    "s3://%s: conditional PUT %s",
                    self.bucket,
                    "supported: new ids need no index read"
                    if supported
                    else "not honoured: reading each index before writing it",
                )
            return self._conditional

    def _probe_conditional_put(self) -> bool:
        key = self.layout.probe_key(f"conditional-put-{uuid.uuid4().hex}")
        self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"", IfNoneMatch="*")
        except ClientError as exc:
            return _condition_failed(exc)
        finally:
            with contextlib.suppress(Exception):  # a leftover probe is harmless
                self.client.delete_object(Bucket=self.bucket, Key=key)
        return False

    def read_index(self, interview_id: str) -> dict[str, Any] | None:
        """The ``_index/<id>.json`` document, or None if the interview was never seen."""
        key = self.layout.index_key(interview_id)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        body = response["Body"].read()
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or doc.get("interview_id") != interview_id:
            raise LakeError(
                f"index s3://{self.bucket}/{key} is not an index document of {interview_id!r}; "
                "inspect or delete it before rerunning"
            )
        doc.setdefault("pending", [])
        return doc

    def prefetch_index(self, interview_id: str) -> None:
        """Read ``_index/<id>.json`` ahead of :meth:`plan` / :meth:`quarantine` (e.g. while the
        chunk is still being fetched and checked), so that the read leaves their critical path.

        The document is used once, by the next plan or quarantine of that id, and dropped when
        this writer writes the index first. A read error is kept and raised there, as if read
        then. Safe for the same reason the index lock is: no other writer handles this id now.
        """
        try:
            doc: dict[str, Any] | Exception | None = self.read_index(interview_id)
        except Exception as exc:
            doc = exc
        with self._lock:
            self._prefetched[interview_id] = doc

    def _take_prefetched(self, interview_id: str) -> Any:
        """The prefetched index document of ``interview_id`` (once), else ``_NOT_PREFETCHED``."""
        with self._lock:
            doc = self._prefetched.pop(interview_id, _NOT_PREFETCHED)
        if isinstance(doc, Exception):
            raise doc
        return doc

    def _take_index(self, interview_id: str) -> dict[str, Any] | None:
        """The prefetched index document of ``interview_id`` if any (once), else a fresh read."""
        doc = self._take_prefetched(interview_id)
        return self.read_index(interview_id) if doc is _NOT_PREFETCHED else doc

    def _write_index(
        self, interview_id: str, doc: dict[str, Any], verdict: str, *, create: bool = False
    ) -> bool:
        """Write the index document; with ``create``, only if none exists (False if one does)."""
        with self._lock:
            self._prefetched.pop(interview_id, None)
        doc["updated_at"] = self._timestamp()
        return self._put_or_refused(
            self.layout.index_key(interview_id),
            _json_bytes(doc),
            verdict=verdict,
            kind="index",
            interview_id=interview_id,
            create=create,
        )

    def _put_or_refused(self, key: str, body: bytes, *, create: bool, **entry: Any) -> bool:
        """:meth:`_put`; False when ``create`` and the key exists (the store refused the PUT)."""
        try:
            self._put(key, body, create=create, **entry)
        except ClientError as exc:
            if create and _condition_failed(exc):
                return False
            raise
        return True

    def _check_owned_dir(self, interview_id: str, directory: str) -> None:
        """Refuse to delete anything but one directory of this very interview (index is input)."""
        prefix = self.layout.prefix
        ok = directory.endswith(f"/{interview_id}/") and (
            directory.startswith(f"{prefix}interviews/dt=")
            or directory.startswith(f"{prefix}quarantine/dt=")
        )
        if not ok or ".." in directory:
            raise LakeError(f"refusing to clean {directory!r}: not a directory of {interview_id!r}")

    def _list_dir(self, directory: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=directory):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def _delete_keys(self, keys: Iterable[str]) -> list[str]:
        """Delete ``keys``, every ``interview.json`` first; deleting a missing key is a no-op."""
        ordered = sorted(set(keys), key=lambda k: (not k.endswith("/interview.json"), k))
        json_keys = [k for k in ordered if k.endswith("/interview.json")]
        other_keys = [k for k in ordered if not k.endswith("/interview.json")]
        for group in (json_keys, other_keys):
            for start in range(0, len(group), 1000):
                batch = group[start : start + 1000]
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
                errors = response.get("Errors") or []
                if errors:
                    raise LakeError(f"could not delete {len(errors)} objects, first: {errors[0]}")
        gone = set(ordered)
        with self._lock:
            self._deleted.extend(ordered)
            self._entries = [e for e in self._entries if e.key not in gone]
        return ordered

    def _remove_dirs(
        self, interview_id: str, directories: Iterable[str], keep: frozenset[str] = frozenset()
    ) -> list[str]:
        keys: list[str] = []
        for directory in sorted(set(directories)):
            self._check_owned_dir(interview_id, directory)
            keys.extend(k for k in self._list_dir(directory) if k not in keep)
        return self._delete_keys(keys) if keys else []

    # --- assets --------------------------------------------------------------------------------

    def put_asset_stream(
        self,
        interview_key_base: str,
        name: str,
        chunks: Iterable[bytes],
        *,
        content_type: str | None = None,
    ) -> WrittenObject:
        """Stream ``chunks`` to ``<base>assets/<name>`` holding at most about one part in memory.

        One ``put_object`` when everything fits in one part, else a multipart upload, aborted on
        any error (the generator's own included) so no invisible parts are left to pay for.
        The object is recorded in the manifest when the interview is published.
        """
        key = self.layout.asset_key(interview_key_base, name)
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                # Strictly more than a part: the last part is never empty, and an object of
                # exactly one part size stays a single put.
                while len(buffer) > self.part_size:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type
                        )["UploadId"]
                    self._upload_part(key, upload_id, parts, bytes(buffer[: self.part_size]))
                    del buffer[: self.part_size]
            if upload_id is None:
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=bytes(buffer), ContentType=content_type
                )
            else:
                self._upload_part(key, upload_id, parts, bytes(buffer))
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(Exception):  # the original error matters more
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            raise
        return WrittenObject(key, size, digest.hexdigest())

    def _upload_part(
        self, key: str, upload_id: str, parts: list[dict[str, Any]], body: bytes
    ) -> None:
        number = len(parts) + 1
        if number > MAX_PARTS:
            raise LakeError(f"asset {key} needs more than {MAX_PARTS} parts; raise part_size")
        response = self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        parts.append({"ETag": response["ETag"], "PartNumber": number})

    # --- publish -------------------------------------------------------------------------------

    def begin(self, interviews: Iterable[tuple[str, Interview]]) -> int:
        """Journal where this chunk's interviews will go, in one object, before landing any.

        With the journal standing in for each id's pending record, a new id costs three S3
        requests (assets, JSON, index; the last two conditional) instead of four. Call it once,
        before :meth:`plan`, with the interviews about to be published; returns how many were
        journaled (0 on a store without conditional writes, where per-id records are used).
        Journals left by attempts that never finished are read here; their directories are
        cleaned as the ids come by, and each is deleted once all its ids are final.
        """
        if self._journal_key is not None:
            raise RuntimeError("begin() may be called once per writer")
        if not self.conditional_writes:
            return 0
        self._read_leftover_journals()
        entries: dict[str, str] = {}
        for interview_id, interview in interviews:
            if interview_id in self._leftover or interview_id_problem(interview_id):
                continue  # per-id records: these need their index read first anyway
            try:
                base = self.layout.interview_base_for(interview_id, interview, self.role_fields)
            except ValueError:
                continue  # no usable timestamp: plan() raises it when the caller gets there
            entries[interview_id] = base
        self._journal_key = self.layout.journal_key(
            self.dag_id, self.run_id, self.chunk, uuid.uuid4().hex
        )
        if entries:
            doc = {
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "chunk": self.chunk,
                "written_at": self._timestamp(),
                "directories": entries,
            }
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._journal_key,
                Body=_json_bytes(doc),
                ContentType="application/json",
            )
            self._journaled = entries
        return len(entries)

    def _read_leftover_journals(self) -> None:
        for key in self._list_dir(self.layout.journal_prefix):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            try:
                directories = json.loads(body)["directories"]
                pairs = [(str(i), str(d)) for i, d in directories.items()]
            except (ValueError, KeyError, TypeError, AttributeError):
                raise LakeError(
                    f"s3://{self.bucket}/{key} is not a chunk journal; inspect or delete it"
                ) from None
            self._leftover_journals[key] = {i for i, _ in pairs}
            for interview_id, directory in pairs:
                self._leftover.setdefault(interview_id, set()).add(directory)

    def _finished(self, interview_id: str) -> None:
        with self._lock:
            self._done.add(interview_id)

    def _close_journals(self) -> list[str]:
        """Delete this chunk's journal and every leftover one whose ids are all final now."""
        with self._lock:
            done = set(self._done)
        journals = dict(self._leftover_journals)
        if self._journaled and self._journal_key:
            journals[self._journal_key] = set(self._journaled)
        closed = [key for key, ids in journals.items() if ids <= done]
        for key in closed:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        return closed

    def plan(self, interview_id: str, interview: Interview) -> PublishPlan:
        """Where ``interview`` goes; records the directory in the index before it is written to.

        Raises ``QodeInvalidIdError`` for a hostile id and ``InvalidTimestampError`` for an
        interview without a usable timestamp (the quality gate quarantines those first).
        """
        check_interview_id(interview_id)
        dt = interview_date(interview.timestamp)
        role = role_of(interview, self.role_fields)
        base = self.layout.interview_base(interview_id, dt, role)
        key = self.layout.interview_key(base)
        with self._id_lock(interview_id):
            if self._journaled.get(interview_id) == base:
                plan = PublishPlan(interview_id, dt, role, base, key)
                with self._lock:
                    self._plans[interview_id] = _Planned(plan, journaled=True)
                return plan
            leftover = self._leftover.get(interview_id, set())
            index = self._take_prefetched(interview_id)
            if index is _NOT_PREFETCHED and self.conditional_writes and not leftover:
                # Most ids are new: create their pending record without reading first.
                created = self._new_index(interview_id, pending=[base])
                if self._write_index(interview_id, created, PENDING, create=True):
                    index, dirty = created, False
                else:
                    index, dirty = self._record_pending(
                        interview_id, self.read_index(interview_id), base
                    )
            else:
                if index is _NOT_PREFETCHED:
                    index = self.read_index(interview_id)
                if leftover:  # directories an unfinished attempt journaled: clean them too
                    index = index or self._new_index(interview_id)
                    index["pending"] = sorted({*index["pending"], *leftover})
                index, dirty = self._record_pending(interview_id, index, base)
                dirty = dirty or base in leftover
            plan = PublishPlan(interview_id, dt, role, base, key, dirty)
            with self._lock:
                self._plans[interview_id] = _Planned(plan, index)
        return plan

    def _record_pending(
        self, interview_id: str, index: dict[str, Any] | None, base: str
    ) -> tuple[dict[str, Any], bool]:
        """Note ``base`` in the index unless it is already there; True if it is dirty."""
        if index is None:
            index = self._new_index(interview_id, pending=[base])
            self._write_index(interview_id, index, PENDING)
            return index, False
        if index.get("state") == PUBLISHED and index.get("base") == base:
            return index, False
        if base in index["pending"]:
            return index, True  # an earlier attempt wrote here and never finished
        index["pending"] = sorted({*index["pending"], base})
        self._write_index(interview_id, index, PENDING)
        return index, False

    def publish(
        self,
        interview_id: str,
        raw: bytes,
        interview: Interview,
        assets: Sequence[WrittenObject] = (),
    ) -> PublishResult:
        """Publish the raw bytes of a passed interview at its one key; see the module doc.

        ``assets`` are what :meth:`put_asset_stream` returned for this interview, streamed under
        the plan's ``base``. Call :meth:`plan` first when there are assets; without a plan, one is
        made here.
        """
        check_interview_id(interview_id)
        with self._lock:
            planned = self._plans.pop(interview_id, None)
        base = self.layout.interview_base_for(interview_id, interview, self.role_fields)
        if planned is None or planned.plan.base != base:
            self.plan(interview_id, interview)
            with self._lock:
                planned = self._plans.pop(interview_id)
        plan = planned.plan
        asset_prefix = f"{plan.base}assets/"
        for asset in assets:
            if not asset.key.startswith(asset_prefix):
                raise ValueError(f"asset {asset.key!r} is not under {asset_prefix!r}")
        sha, size = _sha256(raw), len(raw)
        new_assets = {a.key: a for a in assets}
        for asset in assets:
            self._record(
                ManifestEntry(asset.key, asset.size, asset.sha256, PUBLISHED, "asset", interview_id)
            )

        result = functools.partial(
            PublishResult, interview_id, plan.key, plan.dt, plan.role, sha, size, tuple(assets)
        )
        with self._id_lock(interview_id):
            dirty, json_written = plan.dirty, False
            if planned.journaled:
                # The chunk journal covers this directory: write the JSON and create the index
                # only if absent, and read the index only when one of them is already there.
                json_written = self._put_json(plan.key, raw, interview_id, create=True)
                if json_written:
                    index = self._published_index(plan, sha, size, assets, pending=[])
                    if self._write_index(interview_id, index, PUBLISHED, create=True):
                        self._finished(interview_id)
                        return result(False)
                old = self.read_index(interview_id) or self._new_index(interview_id)
                in_place = old.get("state") == PUBLISHED and old.get("base") == plan.base
                # A JSON there that the index does not own: an attempt that never finished.
                dirty = not json_written and not in_place
            else:
                old = planned.index or self._new_index(interview_id)

            was_published = old.get("state") == PUBLISHED
            same_place = was_published and old.get("base") == plan.base
            old_assets: dict[str, str] = (
                {a["key"]: a["sha256"] for a in old.get("assets") or []} if same_place else {}
            )
            stale_dirs = set(old["pending"])
            if was_published and old.get("base"):
                stale_dirs.add(old["base"])
            if old.get("quarantine"):
                stale_dirs.add(old["quarantine"]["base"])
            stale_dirs.discard(plan.base)
            unchanged = (
                same_place
                and not json_written
                and old.get("sha256") == sha
                and old_assets == {k: a.sha256 for k, a in new_assets.items()}
                and not stale_dirs
                and not dirty
            )
            if unchanged:
                self._record(
                    ManifestEntry(
                        plan.key, size, sha, PUBLISHED, "interview", interview_id, "unchanged"
                    )
                )
                self._finished(interview_id)
                return result(True)

            if not json_written:
                self._put_json(plan.key, raw, interview_id)
            # Assets the new JSON no longer has go before the index forgets them: a crash
            # here leaves them listed in the old index, so the rerun still finds them.
            removed = self._delete_keys(k for k in old_assets if k not in new_assets)
            index = self._published_index(plan, sha, size, assets, pending=sorted(stale_dirs))
            self._write_index(interview_id, index, PUBLISHED)

            if dirty:
                keep = frozenset({plan.key, *new_assets})
                removed += self._remove_dirs(interview_id, [plan.base], keep)
            removed += self._remove_dirs(interview_id, stale_dirs)
            if stale_dirs:
                index["pending"] = []
                self._write_index(interview_id, index, PUBLISHED)
            self._finished(interview_id)
        return result(False, tuple(removed))

    def _put_json(self, key: str, raw: bytes, interview_id: str, *, create: bool = False) -> bool:
        return self._put_or_refused(
            key, raw, verdict=PUBLISHED, kind="interview", interview_id=interview_id, create=create
        )

    def _published_index(
        self,
        plan: PublishPlan,
        sha: str,
        size: int,
        assets: Sequence[WrittenObject],
        pending: list[str],
    ) -> dict[str, Any]:
        index = self._new_index(plan.interview_id, pending=pending)
        index.update(
            state=PUBLISHED,
            key=plan.key,
            base=plan.base,
            dt=plan.dt,
            role=plan.role,
            sha256=sha,
            size=size,
            assets=[asdict(a) for a in assets],
            published_at=self._timestamp(),
            run_id=self.run_id,
            dag_id=self.dag_id,
        )
        return index

    # --- quarantine ----------------------------------------------------------------------------

    def quarantine(
        self,
        interview_id: object,
        raw: bytes,
        failed_rules: Sequence[str],
        reasons: Sequence[str],
        fetched_at: datetime | str | None = None,
    ) -> QuarantineResult:
        """Land failing bytes verbatim with ``reasons.json`` under the run date.

        A published copy is kept (the lake keeps the last good version); the index notes the
        quarantine so that a later publish removes it. An older quarantine copy is replaced.
        """
        id_text = interview_id if isinstance(interview_id, str) else repr(interview_id)
        valid = interview_id_problem(interview_id) is None and not id_text.startswith(
            INVALID_ID_PREFIX
        )
        safe_id = (
            id_text
            if valid
            else INVALID_ID_PREFIX + _sha256(id_text.encode("utf-8", "surrogatepass"))[:20]
        )
        qbase = self.layout.quarantine_base(self.run_date, safe_id)
        key, reasons_key = self.layout.interview_key(qbase), self.layout.reasons_key(qbase)
        sha, size = _sha256(raw), len(raw)

        with self._id_lock(safe_id):
            index = self._take_index(safe_id) if valid else None
            published_key = index.get("key") if index and index.get("state") == PUBLISHED else None
            reasons_doc = {
                "interview_id": id_text,
                "safe_id": safe_id,
                "failed_rules": list(failed_rules),
                "reasons": list(reasons),
                "fetched_at": _iso(fetched_at),
                "quarantined_at": self._timestamp(),
                "run_id": self.run_id,
                "dag_id": self.dag_id,
                "run_date": self.run_date,
                "sha256": sha,
                "size": size,
                "published_key": published_key,
            }
            self._put(
                key,
                raw,
                verdict=QUARANTINED,
                kind="interview",
                interview_id=safe_id,
                content_type="application/octet-stream",
            )
            self._put(
                reasons_key,
                _json_bytes(reasons_doc),
                verdict=QUARANTINED,
                kind="reasons",
                interview_id=safe_id,
            )
            if not valid:
                return QuarantineResult(id_text, safe_id, key, reasons_key, sha, size)

            with self._lock:
                self._plans.pop(safe_id, None)
            index = index or self._new_index(safe_id)
            stale_dirs = set(index["pending"]) | self._leftover.get(safe_id, set())
            if safe_id in self._journaled:  # journaled for a publish that did not happen
                stale_dirs.add(self._journaled[safe_id])
            if index.get("quarantine"):
                stale_dirs.add(index["quarantine"]["base"])
            stale_dirs.discard(qbase)
            if published_key:
                stale_dirs.discard(index["base"])
            else:
                index["state"] = QUARANTINED
            index["quarantine"] = {
                "base": qbase,
                "key": key,
                "reasons_key": reasons_key,
                "sha256": sha,
                "size": size,
                "run_date": self.run_date,
                "run_id": self.run_id,
                "failed_rules": list(failed_rules),
                "quarantined_at": reasons_doc["quarantined_at"],
            }
            index["pending"] = sorted(stale_dirs)
            self._write_index(safe_id, index, QUARANTINED)
            removed = self._remove_dirs(safe_id, stale_dirs)
            if stale_dirs:
                index["pending"] = []
                self._write_index(safe_id, index, QUARANTINED)
            self._finished(safe_id)
        return QuarantineResult(
            id_text, safe_id, key, reasons_key, sha, size, published_key, tuple(removed)
        )

    def _new_index(self, interview_id: str, pending: list[str] | None = None) -> dict[str, Any]:
        return {
            "interview_id": interview_id,
            "state": PENDING,
            "key": None,
            "base": None,
            "dt": None,
            "role": None,
            "sha256": None,
            "size": None,
            "assets": [],
            "published_at": None,
            "run_id": None,
            "dag_id": None,
            "quarantine": None,
            "pending": pending or [],
        }

    # --- reports and manifest ------------------------------------------------------------------

    def write_quality_report(
        self, json_bytes: bytes, html_bytes: bytes | None = None
    ) -> tuple[str, ...]:
        """Store the chunk's quality report (JSON, and Data Docs HTML when given)."""
        json_key, html_key = self.layout.quality_keys(self.dag_id, self.run_id, self.chunk)
        keys = [
            self._put(
                json_key, json_bytes, verdict=REPORT, kind="quality_json", interview_id=None
            ).key
        ]
        if html_bytes is not None:
            keys.append(
                self._put(
                    html_key,
                    html_bytes,
                    verdict=REPORT,
                    kind="quality_html",
                    interview_id=None,
                    content_type="text/html; charset=utf-8",
                ).key
            )
        return tuple(keys)

    def write_manifest(
        self,
        entries: Iterable[ManifestEntry] | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Write ``_manifests/<dag_id>/<run_id>/<chunk>.json``; call it after every other write.

        ``entries`` defaults to everything this writer recorded. Returns the manifest key.
        """
        objects = [e.to_dict() for e in (self.entries if entries is None else entries)]
        interviews: dict[str, set[str]] = {PUBLISHED: set(), QUARANTINED: set()}
        for entry in objects:
            if entry["kind"] == "interview" and entry["verdict"] in interviews:
                interviews[entry["verdict"]].add(entry["interview_id"])
        doc = {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "chunk": self.chunk,
            "run_date": self.run_date,
            "bucket": self.bucket,
            "prefix": self.layout.prefix,
            "written_at": self._timestamp(),
            "counts": {
                "published": len(interviews[PUBLISHED]),
                "quarantined": len(interviews[QUARANTINED]),
                "objects": len(objects),
                "bytes": sum(e["size"] for e in objects if e["action"] == "written"),
                "deleted": len(self.deleted),
            },
            "objects": objects,
            "deleted": self.deleted,
            **(extra or {}),
        }
        key = self.layout.manifest_key(self.dag_id, self.run_id, self.chunk)
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=_json_bytes(doc), ContentType="application/json"
        )
        self._close_journals()
        return key


def _condition_failed(exc: ClientError) -> bool:
    """True when S3 refused a conditional write because of its condition (not for any error)."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # Without a body (some stores), botocore has only the status to go on.
    return error.get("Code") in _CONDITION_FAILED or status in (409, 412)
