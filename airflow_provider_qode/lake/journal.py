"""Chunk journals: which directories a landing may write, whose they are, and for how long.

A journal (``_journal/<dag>/<run>/<chunk>/<owner>.json``) is written by one landing attempt,
its **owner**, before it writes any directory it lists, and carries a lease (``expires_at``)
that the owner renews while it works. Another writer reading it decides by :meth:`Journal.dead`:

* the journal of an earlier attempt of the *same* task (same dag, run and chunk) is dead: Airflow
  runs one try of a task instance at a time, so its retry means it is over;
* otherwise it is dead only once its lease has expired: the owner stopped renewing (it crashed).

A live journal is another writer at work: never cleaned, never deleted by anyone else. A journal
that vanishes between the listing and the read was closed by its owner: not an error.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.records import json_bytes
from airflow_provider_qode.lake.store import ConditionFailed, LakeError, ObjectStore

__all__ = [
    "DEFAULT_LEASE",
    "Journal",
    "OwnJournal",
    "read_journal",
    "read_journals",
    "reduce_journal",
]

#: How long a journal stays live without renewal; renewed after a third of it has passed.
DEFAULT_LEASE = timedelta(minutes=10)
#: A journal's ``directories`` or ``contested`` map: interview id -> directory.
Directories = dict[str, str]


@dataclass(frozen=True)
class Journal:
    """Another landing's journal, as read."""

    key: str
    etag: str
    owner: str | None
    expires_at: datetime | None
    #: Ids this owner lands on the fast path (no index claim): wait until it is done with them.
    directories: Directories
    #: Ids this owner lands under an index claim (``claim`` in ``_index/<id>.json``).
    contested: Directories = field(default_factory=dict)
    #: Written by an earlier attempt of the reader's own task.
    same_task: bool = False

    def dead(self, now: datetime) -> bool:
        """Over: an earlier try of the reader's task, a lease run out, or a journal without one."""
        return self.same_task or self.expires_at is None or self.expires_at <= now

    def holds(self, interview_id: str) -> bool:
        return interview_id in self.directories or interview_id in self.contested


def _parse(key: str, etag: str, body: bytes, task_prefix: str) -> Journal:
    try:
        doc = json.loads(body)
        directories = {str(i): str(d) for i, d in doc["directories"].items()}
        contested = {str(i): str(d) for i, d in (doc.get("contested") or {}).items()}
        expires = doc.get("expires_at")
        expires_at = datetime.fromisoformat(expires) if expires else None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LakeError(f"{key} is not a chunk journal; inspect or delete it") from None
    if expires_at is not None and expires_at.tzinfo is None:
        raise LakeError(f"{key} is not a chunk journal (naive expires_at); inspect or delete it")
    return Journal(
        key,
        etag,
        doc.get("owner"),
        expires_at,
        directories,
        contested,
        same_task=key.startswith(task_prefix),
    )


def read_journal(store: ObjectStore, key: str, task_prefix: str) -> Journal | None:
    """The journal at ``key``, or None if it is gone (closed by its owner meanwhile)."""
    found = store.get(key)
    if found is None:
        return None
    return _parse(key, found[1], found[0], task_prefix)


def read_journals(
    store: ObjectStore, layout: LakeLayout, task_prefix: str, skip: str | None = None
) -> list[Journal]:
    """Every journal in the lake but ``skip``; one that vanished since the listing is left out."""
    journals = []
    for key in store.list_keys(layout.journal_prefix):
        if key != skip:
            journal = read_journal(store, key, task_prefix)
            if journal is not None:
                journals.append(journal)
    return journals


class OwnJournal:
    """This landing's journal: written, renewed and closed by this writer only."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        header: dict[str, Any],
        *,
        lease: timedelta,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.key = key
        self.header = header
        self.lease = lease
        self._now = now
        self._lock = threading.Lock()
        self.directories: Directories = {}
        self.contested: Directories = {}
        self.written = False
        self._renewed: datetime | None = None

    def write(self, directories: Directories, contested: Directories) -> None:
        with self._lock:
            self.directories, self.contested = dict(directories), dict(contested)
            self._write()

    def _write(self) -> None:
        now = self._now().astimezone(UTC)
        doc = {
            **self.header,
            "written_at": now.isoformat(),
            "expires_at": (now + self.lease).isoformat(),
            "directories": self.directories,
            "contested": self.contested,
        }
        self.store.put(self.key, json_bytes(doc))
        self.written, self._renewed = True, now

    def renew_if_due(self) -> None:
        """The heartbeat: rewrite the journal once a third of its lease has passed."""
        with self._lock:
            due = self._renewed is not None and (
                self._now().astimezone(UTC) - self._renewed >= self.lease / 3
            )
            if self.written and due:
                self._write()

    def close(self) -> None:
        with self._lock:
            if self.written:
                self.store.delete(self.key)
                self.written = False


def reduce_journal(store: ObjectStore, key: str, finished: Iterable[str], task_prefix: str) -> None:
    """Remove ``finished`` ids from a dead journal (compare-and-swap), deleting it when empty.

    Its ids come back in whatever chunks, so each writer takes out the ones it made final.
    """
    done = set(finished)
    for _ in range(20):
        found = store.get(key)
        if found is None:
            return
        current = _parse(key, found[1], found[0], task_prefix)
        directories = {i: d for i, d in current.directories.items() if i not in done}
        contested = {i: d for i, d in current.contested.items() if i not in done}
        if (directories, contested) == (current.directories, current.contested):
            return
        if not directories and not contested:
            store.delete(key)
            return
        doc = json.loads(found[0])
        doc.update(directories=directories, contested=contested)
        try:
            store.put(key, json_bytes(doc), if_match=current.etag)
            return
        except ConditionFailed:
            continue
    raise LakeError(f"{key}: changed too often while being reduced")
