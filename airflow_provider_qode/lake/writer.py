"""The landing protocol of the lake: plan, publish, move and quarantine, with index and journals.

The parts, each readable alone: :mod:`.store` (every S3 request, the bucket's policy applied
once), :mod:`.index` (index documents, compare-and-swap, claims), :mod:`.journal` (chunk
journals: owner and lease), :mod:`.records` (manifest and quality report), :mod:`.layout`
(keys). The protocol and the invariants it keeps are written once, in ``docs/lake.md``
("Write protocol", "Overlapping writers"); the short version:

1. A directory is recorded before anything is written there: in this chunk's journal
   (:meth:`LakeWriter.begin`), else in the id's index under ``pending``.
2. Assets first, ``interview.json`` last, then the index; then stale directories go, each JSON
   first. Every step is safe to crash after; a rerun finishes the job.
3. Every index write is a compare-and-swap (``If-None-Match: *`` to create, ``If-Match`` on the
   ETag read to update), re-read and re-applied when refused.
4. An id another live writer holds (its journal lists it, or its index carries a live ``claim``)
   is waited for, never cleaned; an id held by a dead attempt (lease run out, or an earlier try
   of this very task) is cleaned. Between two copies the later fetch wins.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import mimetypes
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_qode.lake.index import PENDING, IndexDocuments, Versioned, new_index, same
from airflow_provider_qode.lake.journal import (
    DEFAULT_LEASE,
    Journal,
    OwnJournal,
    read_journals,
    reduce_journal,
)
from airflow_provider_qode.lake.layout import (
    DEFAULT_ROLE_FIELDS,
    LakeLayout,
    interview_date,
    role_of,
    run_date_text,
    valid_dts,
)
from airflow_provider_qode.lake.records import (
    PUBLISHED,
    QUARANTINED,
    REPORT,
    ManifestEntry,
    RunRecords,
    WrittenObject,
    iso,
    json_bytes,
    sha256,
)
from airflow_provider_qode.lake.store import ConditionFailed, LakeError, ObjectStore, s3_hook
from airflow_provider_qode.models import Interview, check_interview_id, interview_id_problem

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "PENDING",
    "PUBLISHED",
    "QUARANTINED",
    "REPORT",
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
INVALID_ID_PREFIX = "_invalid-id-"
_NOT_PREFETCHED: Any = object()

log = logging.getLogger(__name__)


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
    #: A copy from a later fetch was already published: it stays, and this one was not written
    #: (``key``, ``dt`` and ``role`` are that copy's).
    superseded: bool = False
    #: The ``dt`` partitions an earlier publish of this id in this same DAG run changed (a try
    #: of this task that then failed, reporting nothing), found in place or written over.
    earlier_in_run: tuple[str, ...] = ()


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
    #: As :attr:`PublishResult.earlier_in_run`, for that kept copy.
    earlier_in_run: tuple[str, ...] = ()


@dataclass
class _Planned:
    plan: PublishPlan
    index: Versioned = (None, None)
    #: On this chunk's journal's fast path: the index was neither read nor written yet.
    journaled: bool = False
    #: This writer holds the id's index claim.
    claimed: bool = False
    #: The published copy came from a later fetch: this one is not written.
    superseded: dict[str, Any] | None = field(default=None)


def _known(prefetched: Any) -> Versioned | None:
    return None if prefetched is _NOT_PREFETCHED else prefetched


def _instant(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class LakeWriter:
    """Lands one batch (one chunk of one DAG run) under ``s3://<bucket>/<prefix>/``.

    ``s3`` is an Airflow ``S3Hook`` (its connection, ``extra_args`` and requester-pays apply) or
    a boto3 S3 client, shared by the threads of a pool. ``encryption`` (``AES256``, ``aws:kms``)
    and ``kms_key_id`` apply to every object written. ``conditional_writes``: None probes the
    store once; False forces read-then-write for stores that ignore ``If-None-Match``.
    ``lease``: how long this writer's journal holds its ids without renewal.
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
        encryption: str | None = None,
        kms_key_id: str | None = None,
        extra_args: Mapping[str, Any] | None = None,
        lease: timedelta = DEFAULT_LEASE,
        fetched_at: datetime | str | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self.store = ObjectStore(
            s3, bucket, extra_args=extra_args, encryption=encryption, kms_key_id=kms_key_id
        )
        self.client: S3Client = self.store.client
        self.bucket = bucket
        self.layout = LakeLayout(prefix)
        self.dag_id = dag_id
        self.run_id = run_id
        self.chunk = str(chunk)
        self.run_date = run_date_text(run_date)
        self.role_fields = tuple(role_fields)
        self.part_size = part_size
        self._now = now or (lambda: datetime.now(UTC))
        self.records = RunRecords(
            self.store,
            self.layout,
            dag_id=dag_id,
            run_id=run_id,
            chunk=self.chunk,
            run_date=self.run_date,
        )
        #: This landing attempt; its journal and claims carry it.
        self.owner = uuid.uuid4().hex
        #: When this copy of the chunk was fetched: between two copies, the later fetch wins.
        self.fetched_at: str = iso(fetched_at) or self._timestamp()
        journal_key = self.layout.journal_key(dag_id, run_id, self.chunk, self.owner)
        self._task_prefix = journal_key.rsplit("/", 1)[0] + "/"
        self._journal = OwnJournal(
            self.store,
            journal_key,
            {"dag_id": dag_id, "run_id": run_id, "chunk": self.chunk, "owner": self.owner},
            lease=lease,
            now=self._now,
        )
        self.lease = lease
        self.index = IndexDocuments(
            self.store,
            self.layout,
            self.records,
            self._journal,
            owner=self.owner,
            task_prefix=self._task_prefix,
            now=self._now,
            conditional=lambda: self.conditional_writes,
            on_write=self._forget_prefetched,
        )
        self._lock = threading.Lock()
        self._id_locks: dict[str, threading.Lock] = {}
        self._plans: dict[str, _Planned] = {}
        #: Index documents read ahead (:meth:`prefetch_index`), each used once then dropped.
        self._prefetched: dict[str, Versioned | Exception] = {}
        #: None until probed (:attr:`conditional_writes`); True/False given skip the probe.
        self._conditional: bool | None = conditional_writes
        #: Ids on this chunk's fast path: id -> directory (in the journal's ``directories``).
        self._fast: dict[str, str] = {}
        #: Live journals of other writers, as read at :meth:`begin`.
        self._others: list[Journal] = []
        #: Journals of dead attempts: id -> their directories; and their keys.
        self._leftover: dict[str, set[str]] = {}
        self._dead_journals: set[str] = set()
        #: Asset directories of superseded plans: their streams are read and dropped.
        self._superseded_bases: set[str] = set()
        #: interview.json key -> the ETag S3 returned for its PUT (the curated row cache's key).
        self.json_etags: dict[str, str] = {}
        #: Ids whose index is final (published or quarantined, nothing pending).
        self._done: set[str] = set()
        #: When each id given to :meth:`begin` and not yet final was fetched, if not
        #: :attr:`fetched_at` (the sub-batches of a chunk are fetched one after another).
        self._fetched_at: dict[str, str] = {}

    @classmethod
    def from_conn_id(
        cls,
        aws_conn_id: str | None,
        bucket: str,
        prefix: str = "",
        *,
        extra_args: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> LakeWriter:
        """A writer on the Airflow AWS connection ``aws_conn_id`` (honours ``endpoint_url``).

        ``extra_args`` go to the ``S3Hook`` as its upload arguments, as with any S3 operator.
        """
        return cls(s3_hook(aws_conn_id, extra_args), bucket, prefix, **kwargs)

    # --- bookkeeping ---------------------------------------------------------------------------

    @property
    def entries(self) -> list[ManifestEntry]:
        """Each object this writer wrote (or found unchanged) and did not delete, once."""
        return self.records.entries

    @property
    def deleted(self) -> list[str]:
        return self.records.deleted

    def _id_lock(self, interview_id: str) -> threading.Lock:
        with self._lock:
            return self._id_locks.setdefault(interview_id, threading.Lock())

    def _timestamp(self) -> str:
        return self._now().astimezone(UTC).isoformat()

    def _finished(self, interview_id: str) -> None:
        with self._lock:
            self._done.add(interview_id)
            self._fetched_at.pop(interview_id, None)

    @property
    def conditional_writes(self) -> bool:
        """Whether the store honours ``If-None-Match: *`` on PUT (probed once, on first use)."""
        with self._lock:
            if self._conditional is not None:
                return self._conditional
        key = self.layout.probe_key(f"conditional-put-{uuid.uuid4().hex}")
        supported = self.store.probe_conditional_put(key)
        with self._lock:
            if self._conditional is None:
                self._conditional = supported
                log.info(
                    "s3://%s: conditional PUT %s",
                    self.bucket,
                    "supported: index updates are compare-and-swap"
                    if supported
                    else "not honoured: one writer per id, each index read before it is written",
                )
            return self._conditional

    @property
    def _claims(self) -> bool:
        """Whether this writer takes index claims: it began, on a store with conditional PUT."""
        return self._journal.written

    # --- the index -----------------------------------------------------------------------------

    def read_index(self, interview_id: str) -> dict[str, Any] | None:
        """The ``_index/<id>.json`` document, or None if the interview was never seen."""
        return self.index.read(interview_id)[0]

    def prefetch_index(self, interview_id: str) -> None:
        """Read ``_index/<id>.json`` ahead of :meth:`plan` / :meth:`quarantine` (e.g. while the
        chunk is still being fetched and checked), so that the read leaves their critical path.

        The document is used once, by the next plan or quarantine of that id. A read error is
        kept and raised there, as if read then. A document changed meanwhile costs nothing but
        a retry: the write that uses it is a compare-and-swap on its ETag.
        """
        try:
            doc: Versioned | Exception = self.index.read(interview_id)
        except Exception as exc:
            doc = exc
        with self._lock:
            self._prefetched[interview_id] = doc

    def _forget_prefetched(self, interview_id: str) -> None:
        """Drop a read-ahead document once this writer writes the index itself."""
        with self._lock:
            self._prefetched.pop(interview_id, None)

    def _take_prefetched(self, interview_id: str) -> Any:
        """The prefetched ``(doc, etag)`` of ``interview_id`` (once), else ``_NOT_PREFETCHED``."""
        with self._lock:
            doc = self._prefetched.pop(interview_id, _NOT_PREFETCHED)
        if isinstance(doc, Exception):
            raise doc
        return doc

    def _fetched_at_of(self, interview_id: str) -> str:
        """When this writer's copy of ``interview_id`` was fetched (as given to :meth:`begin`)."""
        with self._lock:
            return self._fetched_at.get(interview_id, self.fetched_at)

    def _newer(self, interview_id: str, doc: dict[str, Any] | None) -> bool:
        """Whether ``doc`` is a published copy from a strictly later fetch than this writer's."""
        if not doc or doc.get("state") != PUBLISHED:
            return False
        theirs = _instant(doc.get("fetched_at"))
        ours = _instant(self._fetched_at_of(interview_id))
        return theirs is not None and ours is not None and theirs > ours

    # --- cleanup -------------------------------------------------------------------------------

    def _check_owned_dir(self, interview_id: str, directory: str) -> None:
        """Refuse to delete anything but one directory of this very interview (index is input)."""
        prefix = self.layout.prefix
        ok = directory.endswith(f"/{interview_id}/") and (
            directory.startswith(f"{prefix}interviews/dt=")
            or directory.startswith(f"{prefix}quarantine/dt=")
        )
        if not ok or ".." in directory:
            raise LakeError(f"refusing to clean {directory!r}: not a directory of {interview_id!r}")

    def _delete_keys(self, keys: Iterable[str]) -> list[str]:
        """Delete ``keys``, every ``interview.json`` first; deleting a missing key is a no-op."""
        ordered = sorted(set(keys), key=lambda k: (not k.endswith("/interview.json"), k))
        self.store.delete_many([k for k in ordered if k.endswith("/interview.json")])
        self.store.delete_many([k for k in ordered if not k.endswith("/interview.json")])
        self.records.removed(ordered)
        return ordered

    def _remove_dirs(
        self, interview_id: str, directories: Iterable[str], keep: frozenset[str] = frozenset()
    ) -> list[str]:
        keys: list[str] = []
        for directory in sorted(set(directories)):
            self._check_owned_dir(interview_id, directory)
            keys.extend(k for k in self.store.list_keys(directory) if k not in keep)
        return self._delete_keys(keys) if keys else []

    def _clear_pending(
        self, interview_id: str, removed_dirs: set[str], verdict: str, known: Versioned
    ) -> None:
        """Drop the directories just removed from ``pending`` (a CAS like any index write)."""

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is None or not removed_dirs & set(doc["pending"]):
                return None
            doc["pending"] = sorted(set(doc["pending"]) - removed_dirs)
            return doc

        self.index.cas(interview_id, change, verdict, known)

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

        The object is recorded in the manifest when the interview is published. For a plan
        superseded by a later fetch's copy, the stream is read and nothing is written.
        """
        key = self.layout.asset_key(interview_key_base, name)
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        if interview_key_base in self._superseded_bases:
            data = b"".join(chunks)
            return WrittenObject(key, len(data), sha256(data))
        self._journal.renew_if_due()
        size, digest = self.store.put_stream(
            key, chunks, content_type, self.part_size, on_part=self._journal.renew_if_due
        )
        return WrittenObject(key, size, digest)

    # --- begin: the chunk journal --------------------------------------------------------------

    def begin(
        self,
        interviews: Iterable[tuple[str, Interview]],
        *,
        fetched_at: datetime | str | None = None,
    ) -> int:
        """Journal where the next interviews will go, in one object, before landing any.

        Ids no other live writer holds take the fast path: the journal stands in for their
        pending record, so a new id costs three requests (assets, JSON, index). The others are
        landed under an index claim. Journals of dead attempts are read here; their directories
        are cleaned as their ids come by. Returns how many ids are on the fast path (0 on a
        store without conditional writes, where each id has its own pending record).

        A chunk landed in sub-batches calls this once per sub-batch, while earlier ones may still
        be landing: the journal then lists the new ids and every earlier one not yet final, so it
        stays the size of the sub-batches in flight. ``fetched_at``: when these interviews were
        fetched (default: when this writer was made), for the later-fetch-wins rule of their
        publishes; it is also the default for later calls.
        """
        interviews = list(interviews)
        if fetched_at is not None:
            self.fetched_at = iso(fetched_at) or self.fetched_at
            with self._lock:
                self._fetched_at.update((i, self.fetched_at) for i, _ in interviews)
        if not self.conditional_writes:
            return 0
        with self._lock:
            done = set(self._done)
        # Ids of an earlier call not yet final stay journaled, as they were.
        kept_fast = {i: d for i, d in self._journal.directories.items() if i not in done}
        kept_contested = {i: d for i, d in self._journal.contested.items() if i not in done}
        live = self._note_journals()
        entries: dict[str, str] = {}
        for interview_id, interview in interviews:
            if interview_id in self._leftover or interview_id_problem(interview_id):
                continue  # claimed, with the leftover directories in its pending record
            try:
                base = self.layout.interview_base_for(interview_id, interview, self.role_fields)
            except ValueError:
                continue  # no usable timestamp: plan() raises it when the caller gets there
            entries[interview_id] = base
        fast = {i: d for i, d in entries.items() if not any(j.holds(i) for j in live)}
        contested = {i: d for i, d in entries.items() if i not in fast}
        self._journal.write({**kept_fast, **fast}, {**kept_contested, **contested})
        # A writer that began at the same time may have missed this journal: look again, and
        # give up the fast path for any id it holds. Of two such writers, at least one sees the
        # other here, and that one waits.
        live = self._note_journals()
        late = {i: d for i, d in fast.items() if any(j.holds(i) for j in live)}
        if late:
            fast = {i: d for i, d in fast.items() if i not in late}
            self._journal.write({**kept_fast, **fast}, {**kept_contested, **contested, **late})
        self._others = live
        self._fast = {**kept_fast, **fast}
        return len(fast)

    def _note_journals(self) -> list[Journal]:
        """Read every other journal: note the dead ones' directories; return the live ones."""
        now = self._now().astimezone(UTC)
        live = []
        for journal in read_journals(
            self.store, self.layout, self._task_prefix, skip=self._journal.key
        ):
            if not journal.dead(now):
                live.append(journal)
                continue
            self._dead_journals.add(journal.key)
            for interview_id, directory in {**journal.directories, **journal.contested}.items():
                self._leftover.setdefault(interview_id, set()).add(directory)
        return live

    def _close_journals(self) -> None:
        """Close this chunk's journal, and take the ids it made final out of dead ones."""
        with self._lock:
            done = set(self._done)
        for key in sorted(self._dead_journals):
            reduce_journal(self.store, key, done, self._task_prefix)
        mine = set(self._journal.directories) | set(self._journal.contested)
        if mine <= done:
            self._journal.close()
        elif self._journal.written:  # left for the next attempt, and no one waits for it
            self._journal.lease = timedelta(0)
            self._journal.write(
                {i: d for i, d in self._journal.directories.items() if i not in done},
                {i: d for i, d in self._journal.contested.items() if i not in done},
            )

    # --- plan ----------------------------------------------------------------------------------

    def plan(self, interview_id: str, interview: Interview) -> PublishPlan:
        """Where ``interview`` goes; records the directory before anything is written there.

        Raises ``QodeInvalidIdError`` for a hostile id and ``InvalidTimestampError`` for an
        interview without a usable timestamp (the quality gate quarantines those first).
        """
        check_interview_id(interview_id)
        dt = interview_date(interview.timestamp)
        role = role_of(interview, self.role_fields)
        base = self.layout.interview_base(interview_id, dt, role)
        key = self.layout.interview_key(base)
        self._journal.renew_if_due()
        with self._id_lock(interview_id):
            if self._fast.get(interview_id) == base:
                planned = _Planned(PublishPlan(interview_id, dt, role, base, key), journaled=True)
            elif self._claims:
                planned = self._plan_claimed(interview_id, dt, role, base, key)
            else:
                planned = self._plan_unclaimed(interview_id, dt, role, base, key)
            with self._lock:
                self._plans[interview_id] = planned
        return planned.plan

    def _plan_claimed(self, interview_id: str, dt: str, role: str, base: str, key: str) -> _Planned:
        leftover = self._leftover.get(interview_id, set())
        seen: dict[str, Any] = {}

        def change(doc: dict[str, Any]) -> dict[str, Any]:
            seen["newer"] = self._newer(interview_id, doc)
            seen["dirty"] = base in doc["pending"] or base in leftover
            if seen["newer"]:
                return doc
            in_place = doc.get("state") == PUBLISHED and doc.get("base") == base
            add = set(leftover) | (set() if in_place and not seen["dirty"] else {base})
            doc["pending"] = sorted({*doc["pending"], *add})
            return doc

        doc, etag = self.index.claim(
            interview_id, _known(self._take_prefetched(interview_id)), self._others, change
        )
        assert doc is not None
        if seen["newer"]:
            with self._lock:
                self._superseded_bases.add(base)
            plan = PublishPlan(interview_id, dt, role, base, key)
            return _Planned(plan, (doc, etag), claimed=True, superseded=doc)
        plan = PublishPlan(interview_id, dt, role, base, key, seen["dirty"])
        return _Planned(plan, (doc, etag), claimed=True)

    def _plan_unclaimed(
        self, interview_id: str, dt: str, role: str, base: str, key: str
    ) -> _Planned:
        """One writer per id (no journal, or a store without CAS): a pending record per id."""
        prefetched = self._take_prefetched(interview_id)
        if prefetched is _NOT_PREFETCHED and self.conditional_writes:
            # Most ids are new: create their pending record without reading first.
            created = new_index(interview_id, pending=[base])
            try:
                etag = self.index.write(interview_id, created, PENDING, None)
            except ConditionFailed:
                prefetched = self.index.read(interview_id)
            else:
                return _Planned(PublishPlan(interview_id, dt, role, base, key), (created, etag))
        known: Versioned = (
            self.index.read(interview_id) if prefetched is _NOT_PREFETCHED else prefetched
        )
        dirty = known[0] is not None and base in known[0]["pending"]

        def change(old: dict[str, Any] | None) -> dict[str, Any] | None:
            if old is None:
                return new_index(interview_id, pending=[base])
            if old.get("state") == PUBLISHED and old.get("base") == base:
                return None
            if base in old["pending"]:
                return None  # an earlier attempt wrote here and never finished
            old["pending"] = sorted({*old["pending"], base})
            return old

        known = self.index.cas(interview_id, change, PENDING, known)
        return _Planned(PublishPlan(interview_id, dt, role, base, key, dirty), known)

    # --- publish -------------------------------------------------------------------------------

    def publish(
        self,
        interview_id: str,
        raw: bytes,
        interview: Interview,
        assets: Sequence[WrittenObject] = (),
    ) -> PublishResult:
        """Publish the raw bytes of a passed interview at its one key; see ``docs/lake.md``.

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
        sha, size = sha256(raw), len(raw)
        self._journal.renew_if_due()
        with self._id_lock(interview_id):
            if planned.superseded is not None:
                return self._superseded(interview_id, planned, sha, size)
            for asset in assets:
                self.records.add(
                    ManifestEntry(
                        asset.key, asset.size, asset.sha256, PUBLISHED, "asset", interview_id
                    )
                )
            result = functools.partial(
                PublishResult, interview_id, plan.key, plan.dt, plan.role, sha, size, tuple(assets)
            )
            json_written, dirty, known = False, plan.dirty, planned.index
            if planned.journaled:
                # The chunk journal covers this directory: write the JSON and create the index
                # only if absent, and read the index only when one of them is already there.
                json_written = self._put_json(plan.key, raw, interview_id, create=True)
                if json_written:
                    index = self._published_index(plan, sha, size, assets, pending=[])
                    try:
                        self.index.write(interview_id, index, PUBLISHED, None)
                    except ConditionFailed:
                        pass
                    else:
                        self._finished(interview_id)
                        return result(False)
                known = self.index.read(interview_id)
                if self._newer(interview_id, known[0]):
                    # Another landing, of a later fetch, finished before this chunk began: its
                    # copy stays, and what this one streamed beside it goes.
                    return self._drop_older(planned, known, sha, size)
                old = known[0] or new_index(interview_id)
                in_place = old.get("state") == PUBLISHED and old.get("base") == plan.base
                # A JSON there that the index does not own: an attempt that never finished.
                dirty = not json_written and not in_place
            return self._publish_over(
                planned, raw, assets, known, json_written=json_written, dirty=dirty, result=result
            )

    def _publish_over(
        self,
        planned: _Planned,
        raw: bytes,
        assets: Sequence[WrittenObject],
        known: Versioned,
        *,
        json_written: bool,
        dirty: bool,
        result: Callable[..., PublishResult],
    ) -> PublishResult:
        """Publish over what the index says now: rewrite, move, or find it unchanged."""
        plan = planned.plan
        interview_id = plan.interview_id
        sha, size = sha256(raw), len(raw)
        new_assets = {a.key: a.sha256 for a in assets}
        old = known[0] or new_index(interview_id)
        same_place = old.get("state") == PUBLISHED and old.get("base") == plan.base
        old_assets = {a["key"]: a["sha256"] for a in old.get("assets") or []} if same_place else {}
        if (
            same_place
            and not json_written
            and not dirty
            and old.get("sha256") == sha
            and old_assets == new_assets
            and not self._stale_dirs(old, plan.base)
        ):
            self.records.add(
                ManifestEntry(
                    plan.key, size, sha, PUBLISHED, "interview", interview_id, "unchanged"
                )
            )
            if planned.claimed:
                self.index.cas(
                    interview_id, lambda d: d and self.index.released(d), PUBLISHED, known
                )
            self._finished(interview_id)
            return result(True, earlier_in_run=self.published_in_this_run(old))

        if not json_written:
            self._put_json(plan.key, raw, interview_id)
        # Assets the new JSON no longer has go before the index forgets them: a crash
        # here leaves them listed in the old index, so the rerun still finds them.
        removed = self._delete_keys(k for k in old_assets if k not in new_assets)
        stale: set[str] = set()
        earlier: list[str] = []

        def change(doc: dict[str, Any] | None) -> dict[str, Any]:
            current = doc or new_index(interview_id)
            stale.clear()
            stale.update(self._stale_dirs(current, plan.base))
            earlier[:] = self.published_in_this_run(current)
            new = self._published_index(plan, sha, size, assets, sorted(stale), earlier)
            new["claim"] = self.index.released(current).get("claim")
            if doc is not None and same(new, doc):
                return doc
            return new

        known = self.index.cas(interview_id, change, PUBLISHED, known)
        if dirty:
            keep = frozenset({plan.key, *new_assets})
            removed += self._remove_dirs(interview_id, [plan.base], keep)
        removed += self._remove_dirs(interview_id, stale)
        if stale:
            self._clear_pending(interview_id, stale, PUBLISHED, known)
        self._finished(interview_id)
        return result(False, tuple(removed), earlier_in_run=tuple(earlier))

    def published_in_this_run(self, index: dict[str, Any] | None) -> tuple[str, ...]:
        """The partitions the publish behind ``index`` changed, if it was this DAG run's.

        A try of the task that published and then failed pushed no summary; its retry finds
        those copies in place (or rewrites them). Reporting what that publish changed (its
        ``touched_dts``, partitions a move left included) keeps the run's curate from missing
        them. Another run's publish was reported by that run.
        """
        if not index or index.get("state") != PUBLISHED:
            return ()
        if (index.get("dag_id"), index.get("run_id")) != (self.dag_id, self.run_id):
            return ()
        found = index.get("touched_dts")
        # Older documents have no touched_dts; a damaged one must not reach curate's dates.
        dts = [*found] if isinstance(found, list) else []
        return tuple(valid_dts([*dts, index.get("dt")]))

    def _stale_dirs(self, index: dict[str, Any], keep: str) -> set[str]:
        """Directories the index says are to go once ``keep`` is the interview's one copy."""
        stale = set(index["pending"])
        if index.get("state") == PUBLISHED and index.get("base"):
            stale.add(index["base"])
        if index.get("quarantine"):
            stale.add(index["quarantine"]["base"])
        stale.discard(keep)
        return stale

    def _drop_older(
        self, planned: _Planned, known: Versioned, sha: str, size: int
    ) -> PublishResult:
        """The fast path found a copy from a later fetch published: remove what this landing
        wrote in its own directory (never the published one), keep the later copy."""
        newer = known[0] or {}
        if newer.get("base") != planned.plan.base:
            self._remove_dirs(planned.plan.interview_id, [planned.plan.base])
        planned = dataclasses.replace(planned, index=known, superseded=newer)
        return self._superseded(planned.plan.interview_id, planned, sha, size)

    def _superseded(
        self, interview_id: str, planned: _Planned, sha: str, size: int
    ) -> PublishResult:
        """A later fetch's copy is published: release the claim, write nothing of this copy."""
        newer = planned.superseded or {}
        self.index.cas(
            interview_id, lambda d: d and self.index.released(d), PUBLISHED, planned.index
        )
        self._finished(interview_id)
        log.info("%s: a copy fetched later is already published; this one is dropped", interview_id)
        return PublishResult(
            interview_id,
            newer["key"],
            newer["dt"],
            newer["role"],
            sha,
            size,
            (),
            unchanged=True,
            superseded=True,
        )

    def _put_json(self, key: str, raw: bytes, interview_id: str, *, create: bool = False) -> bool:
        """Write the interview JSON; with ``create``, False when one is there already."""
        try:
            self.json_etags[key] = self.store.put(
                key, raw, create=create and self.conditional_writes
            )
        except ConditionFailed:
            return False
        self.records.note(key, raw, verdict=PUBLISHED, kind="interview", interview_id=interview_id)
        return True

    def _published_index(
        self,
        plan: PublishPlan,
        sha: str,
        size: int,
        assets: Sequence[WrittenObject],
        pending: list[str],
        earlier: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The index of a published copy. ``touched_dts``: its own partition, those it moves
        out of (``pending``) and ``earlier`` (:meth:`published_in_this_run`), so a retry of a
        landing that fails before its summary can still report them."""
        published_dts = filter(None, map(self.layout.published_dt, pending))
        index = new_index(plan.interview_id, pending=pending)
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
            fetched_at=self._fetched_at_of(plan.interview_id),
            run_id=self.run_id,
            dag_id=self.dag_id,
            touched_dts=sorted({plan.dt, *published_dts, *earlier}),
            writer=self.owner,
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

        ``reasons.json`` is written before the bytes, so every quarantined payload has its
        reasons. A published copy is kept (the lake keeps the last good version); the index
        notes the quarantine so that a later publish removes it. An older copy is replaced.
        """
        id_text = interview_id if isinstance(interview_id, str) else repr(interview_id)
        valid = interview_id_problem(interview_id) is None and not id_text.startswith(
            INVALID_ID_PREFIX
        )
        safe_id = (
            id_text
            if valid
            else INVALID_ID_PREFIX + sha256(id_text.encode("utf-8", "surrogatepass"))[:20]
        )
        qbase = self.layout.quarantine_base(self.run_date, safe_id)
        key, reasons_key = self.layout.interview_key(qbase), self.layout.reasons_key(qbase)
        sha, size = sha256(raw), len(raw)
        self._journal.renew_if_due()

        with self._id_lock(safe_id):
            known: Versioned = (None, None)
            if valid:
                prefetched = self._take_prefetched(safe_id)
                if self.conditional_writes and safe_id not in self._fast:
                    # Wait out any live writer of this id: its directories are not ours to clean.
                    known = self.index.claim(safe_id, _known(prefetched), self._others)
                else:
                    known = (
                        self.index.read(safe_id) if prefetched is _NOT_PREFETCHED else prefetched
                    )
            index = known[0]
            published_key = index.get("key") if index and index.get("state") == PUBLISHED else None
            reasons_doc = {
                "interview_id": id_text,
                "safe_id": safe_id,
                "failed_rules": list(failed_rules),
                "reasons": list(reasons),
                "fetched_at": iso(fetched_at),
                "quarantined_at": self._timestamp(),
                "run_id": self.run_id,
                "dag_id": self.dag_id,
                "run_date": self.run_date,
                "sha256": sha,
                "size": size,
                "published_key": published_key,
            }
            self.records.put(
                reasons_key,
                json_bytes(reasons_doc),
                verdict=QUARANTINED,
                kind="reasons",
                interview_id=safe_id,
            )
            self.records.put(
                key,
                raw,
                verdict=QUARANTINED,
                kind="interview",
                interview_id=safe_id,
                content_type="application/octet-stream",
            )
            if not valid:
                return QuarantineResult(id_text, safe_id, key, reasons_key, sha, size)

            with self._lock:
                self._plans.pop(safe_id, None)
            extra = set(self._leftover.get(safe_id, set()))
            if safe_id in self._fast:  # journaled for a publish that did not happen
                extra.add(self._fast[safe_id])
            record = {
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
            stale: set[str] = set()

            def change(doc: dict[str, Any] | None) -> dict[str, Any]:
                doc = self.index.released(doc or new_index(safe_id))
                stale.clear()
                stale.update(set(doc["pending"]) | extra)
                if doc.get("quarantine"):
                    stale.add(doc["quarantine"]["base"])
                stale.discard(qbase)
                if doc.get("state") == PUBLISHED:
                    stale.discard(doc["base"])
                else:
                    doc["state"] = QUARANTINED
                doc["quarantine"] = record
                doc["pending"] = sorted(stale)
                doc["writer"] = self.owner
                return doc

            known = self.index.cas(safe_id, change, QUARANTINED, known)
            removed = self._remove_dirs(safe_id, stale)
            if stale:
                self._clear_pending(safe_id, stale, QUARANTINED, known)
            self._finished(safe_id)
        return QuarantineResult(
            id_text,
            safe_id,
            key,
            reasons_key,
            sha,
            size,
            published_key,
            tuple(removed),
            self.published_in_this_run(index),
        )

    # --- reports and manifest ------------------------------------------------------------------

    def write_quality_report(
        self, json_bytes: bytes, html_bytes: bytes | None = None
    ) -> tuple[str, ...]:
        """Store the chunk's quality report (JSON, and Data Docs HTML when given)."""
        return self.records.write_quality_report(json_bytes, html_bytes)

    def write_manifest(
        self,
        entries: Iterable[ManifestEntry] | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Write ``_manifests/<dag_id>/<run_id>/<chunk>.json``; call it after every other write.

        ``entries`` defaults to everything this writer recorded. Returns the manifest key. The
        chunk's journal is closed after it.
        """
        key = self.records.write_manifest(entries, written_at=self._timestamp(), extra=extra)
        self._close_journals()
        return key
