"""``_index/<id>.json``: where each interview is now, changed only by compare-and-swap.

Every write is conditional on what was read (``If-None-Match: *`` to create, ``If-Match`` on the
ETag to change) and re-applied on a fresh read when refused, so two writers never lose each
other's updates. An id's **claim** (``{"owner", "journal"}``) says which landing is writing its
directories right now; it is live while that owner's journal is (see :mod:`.journal`).
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow_provider_qode.lake.journal import Journal, OwnJournal, read_journal
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.records import RunRecords, json_bytes
from airflow_provider_qode.lake.store import ConditionFailed, LakeError, ObjectStore

__all__ = [
    "MAX_CAS_ATTEMPTS",
    "PENDING",
    "IndexDocuments",
    "Versioned",
    "new_index",
    "read_index",
]

#: The index state of an id whose first publish has not finished.
PENDING = "pending"
#: Compare-and-swap attempts on one index document before giving up with a LakeError.
MAX_CAS_ATTEMPTS = 50
#: Index fields that change on every write and say nothing about where the interview is.
_VOLATILE = frozenset({"updated_at", "published_at"})
#: An index document and the ETag it was read with (None: no document, or a store without CAS).
Versioned = tuple[dict[str, Any] | None, str | None]


def new_index(interview_id: str, pending: list[str] | None = None) -> dict[str, Any]:
    """The index document of an id never landed before."""
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
        "fetched_at": None,
        "run_id": None,
        "dag_id": None,
        "touched_dts": [],
        "writer": None,
        "claim": None,
        "quarantine": None,
        "pending": pending or [],
    }


def read_index(store: ObjectStore, layout: LakeLayout, interview_id: str) -> Versioned:
    """``(document, etag)`` of ``_index/<id>.json``, ``(None, None)`` when there is none.

    A document that is not this id's index stops the caller with a ``LakeError`` naming it.
    """
    key = layout.index_key(interview_id)
    found = store.get(key)
    if found is None:
        return None, None
    body, etag = found
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("interview_id") != interview_id:
        raise LakeError(
            f"index s3://{store.bucket}/{key} is not an index document of "
            f"{interview_id!r}; inspect or delete it before rerunning"
        )
    doc.setdefault("pending", [])
    return doc, etag


def same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two index documents say the same, write times aside."""
    return {k: v for k, v in a.items() if k not in _VOLATILE} == {
        k: v for k, v in b.items() if k not in _VOLATILE
    }


class IndexDocuments:
    """The index documents as one landing (``owner``) reads, changes and claims them."""

    def __init__(
        self,
        store: ObjectStore,
        layout: LakeLayout,
        records: RunRecords,
        journal: OwnJournal,
        *,
        owner: str,
        task_prefix: str,
        now: Callable[[], datetime],
        conditional: Callable[[], bool],
        on_write: Callable[[str], None],
    ) -> None:
        self.store = store
        self.layout = layout
        self.records = records
        self.journal = journal
        self.owner = owner
        self._task_prefix = task_prefix
        self._now = now
        self._conditional = conditional
        self._on_write = on_write

    def read(self, interview_id: str) -> Versioned:
        return read_index(self.store, self.layout, interview_id)

    def write(
        self, interview_id: str, doc: dict[str, Any], verdict: str, etag: str | None
    ) -> str | None:
        """One conditional PUT of the index: create if ``etag`` is None, else ``If-Match``."""
        self._on_write(interview_id)
        doc["updated_at"] = self._now().astimezone(UTC).isoformat()
        key = self.layout.index_key(interview_id)
        body = json_bytes(doc)
        if self._conditional():
            new_etag: str | None = self.store.put(key, body, create=etag is None, if_match=etag)
        else:
            self.store.put(key, body)
            new_etag = None
        self.records.note(key, body, verdict=verdict, kind="index", interview_id=interview_id)
        return new_etag

    def cas(
        self,
        interview_id: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        verdict: str,
        known: Versioned,
    ) -> Versioned:
        """Apply ``change`` to the index by compare-and-swap, re-reading when refused.

        ``change`` gets a copy of the current document (or None) and returns the new one, or
        None when nothing needs writing; it must be safe to call again on a newer document. A
        refusal caused by this writer's own PUT (answered, lost, resent by botocore) re-reads its
        own document, which ``change`` then leaves as it is.
        """
        doc, etag = known
        for _ in range(MAX_CAS_ATTEMPTS):
            new = change(copy.deepcopy(doc))
            if new is None or (doc is not None and same(new, doc)):
                return doc, etag
            try:
                return new, self.write(interview_id, new, verdict, etag)
            except ConditionFailed:
                doc, etag = self.read(interview_id)
        raise LakeError(f"index of {interview_id!r} kept changing: {MAX_CAS_ATTEMPTS} attempts")

    def released(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` without this landing's claim (another landing's claim stays)."""
        claim = doc.get("claim")
        if isinstance(claim, dict) and claim.get("owner") == self.owner:
            doc["claim"] = None
        return doc

    # --- other writers -------------------------------------------------------------------------

    def _dead(self, journal: Journal | None) -> bool:
        return journal is None or journal.dead(self._now().astimezone(UTC))

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        """Poll ``ready`` (backing off to 0.5 s) until True; LakeError after twice the lease."""
        deadline = time.monotonic() + 2 * self.journal.lease.total_seconds()
        delay = 0.05
        while not ready():
            if time.monotonic() > deadline:
                raise LakeError(f"gave up waiting for {what}")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            self.journal.renew_if_due()

    def _claimed_by_other(self, doc: dict[str, Any] | None) -> bool:
        """Whether ``doc`` carries another landing's claim whose journal is still live."""
        claim = doc.get("claim") if doc else None
        if not isinstance(claim, dict) or claim.get("owner") in (None, self.owner):
            return False
        journal = read_journal(self.store, str(claim.get("journal")), self._task_prefix)
        return not self._dead(journal) and journal is not None and journal.owner == claim["owner"]

    def _fast_path_done(self, other: Journal, interview_id: str) -> bool:
        doc, _ = self.read(interview_id)
        if doc is not None and doc.get("writer") == other.owner:
            return True
        current = read_journal(self.store, other.key, self._task_prefix)
        return self._dead(current) or interview_id not in current.directories  # type: ignore[union-attr]

    def claim(
        self,
        interview_id: str,
        known: Versioned | None,
        others: Sequence[Journal],
        change: Callable[[dict[str, Any]], dict[str, Any]] = lambda doc: doc,
    ) -> Versioned:
        """Wait until no other live landing holds ``interview_id``, then claim its index.

        A landing on its fast path for the id (``others``' journals list it) is waited for
        until its index write names it; a claim, until released or its journal is dead.
        ``change`` adds to the claiming write (the directory about to be written, say).
        ``known``: the document already read, if any.
        """
        for other in others:
            if interview_id in other.directories:
                self._wait(
                    functools.partial(self._fast_path_done, other, interview_id),
                    f"{interview_id!r}, landing in {other.key}",
                )
        doc, etag = self.read(interview_id) if known is None else known
        while True:
            if self._claimed_by_other(doc):
                self._wait(
                    lambda: not self._claimed_by_other(self.read(interview_id)[0]),
                    f"the claim on {interview_id!r}",
                )
                doc, etag = self.read(interview_id)
                continue
            new = change(copy.deepcopy(doc) if doc else new_index(interview_id))
            new["claim"] = {"owner": self.owner, "journal": self.journal.key}
            try:
                return new, self.write(interview_id, new, PENDING, etag)
            except ConditionFailed:
                doc, etag = self.read(interview_id)
