"""The local Qode stand-in: a real HTTP server on loopback, with faults on demand.

It speaks the API of ``CONTRACT.md`` under ``/api/v1`` and adds what a real server never offers a
test: deterministic faults (429 with ``Retry-After``, 5xx, dropped connections, slow and
truncated bodies), a per-id *script* of outcomes, request counters, and the verdicts the quality
gate must reach (``/api/v1/_sandbox/...``, no token). It is a bare ASGI app on uvicorn, not a
framework app: per request it does a few dict lookups, and latency is an ``asyncio.sleep``, so one
process sustains thousands of concurrent slow requests for the benchmark.

Run it in a thread (:class:`SandboxServer`) for tests, or as its own process
(:func:`run_sandbox_process`, the ``sandbox`` CLI) when the client's CPU must not share its GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import hashlib
import json
import mimetypes
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Final

import httpx
import uvicorn

from airflow_provider_qode.sandbox.generator import (
    CREATE_INTERVIEW_TYPES,
    LANGUAGES,
    STATUSES,
    PayloadSizes,
    SandboxDataset,
    blob_chunks,
    build_interview,
    interview_id_problem,
    make_png,
)

__all__ = [
    "BASE_PATH",
    "DEFAULT_TOKEN",
    "FaultConfig",
    "SandboxAdmin",
    "SandboxApp",
    "SandboxServer",
    "parse_outcome",
    "run_sandbox_process",
    "sandbox_process",
]

BASE_PATH: Final = "/api/v1"
DEFAULT_TOKEN: Final = "sandbox-token"
DETAILS_PREFIX: Final = "/integrations/candidates/interviews"
OFFSITE_URL: Final = "http://example.invalid/x.png"
SERVICE_UNAVAILABLE_HTML: Final = b"<html><body>Service Unavailable</body></html>"
MAX_BLOB_BYTES: Final = 64 * 1024**3
MAX_REQUEST_BODY: Final = 1024 * 1024

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# --- faults ----------------------------------------------------------------------------------

_FAULT_KINDS: Final = frozenset({"ok", "status", "drop", "malformed", "slow", "hang"})


@dataclass(frozen=True)
class Outcome:
    """What one request gets instead of (or on the way to) its normal answer."""

    kind: str  # ok | status | drop | malformed | slow | hang
    status: int = 200
    retry_after: float | str | None = None

    def to_json(self) -> Any:
        if self.kind == "status":
            if self.retry_after is not None:
                return {"status": self.status, "retry_after": self.retry_after}
            return self.status
        return self.kind if self.kind != "ok" else 200


def parse_outcome(entry: object, default_retry_after: float | str | None = None) -> Outcome:
    """One entry of a fault script: ``503``, ``429``, ``200``, ``"drop"``, ``"malformed"``,
    ``"slow"``, ``"hang"``, or ``{"status": 429, "retry_after": 5}``. Raises ValueError."""
    if isinstance(entry, bool):
        raise ValueError(f"bad fault script entry {entry!r}")
    if isinstance(entry, str) and entry.isdigit():
        entry = int(entry)
    if isinstance(entry, int):
        if entry == 200:
            return Outcome("ok")
        if not 400 <= entry <= 599:
            raise ValueError(f"fault status must be 200 or 4xx/5xx, got {entry}")
        return Outcome("status", entry, default_retry_after if entry == 429 else None)
    if isinstance(entry, str):
        if entry not in _FAULT_KINDS - {"status"}:
            raise ValueError(f"unknown fault {entry!r}")
        return Outcome(entry)
    if isinstance(entry, Mapping):
        if "status" in entry:
            base = parse_outcome(entry["status"], default_retry_after)
            retry = entry.get("retry_after", base.retry_after)
            return dataclasses.replace(base, retry_after=retry)
        if "fault" in entry:
            return parse_outcome(entry["fault"], default_retry_after)
    raise ValueError(f"bad fault script entry {entry!r}")


@dataclass
class FaultConfig:
    """Global fault rates (shares of requests, 0-1) and their parameters.

    Rate faults hit interview-details requests only; which request gets which fault is a pure
    function of ``seed``, the interview id and how many times it was asked for, so a run is
    reproducible whatever the concurrency. ``retry_after`` is seconds, an HTTP-date string sent
    verbatim, ``"+N"`` for an HTTP-date N seconds ahead, or None to omit the header.
    """

    latency_ms: float = 0.0
    rate_429: float = 0.0
    retry_after: float | str | None = 1
    rate_5xx: float = 0.0
    rate_drop: float = 0.0
    rate_slow: float = 0.0
    rate_malformed: float = 0.0
    slow_chunks: int = 8
    slow_delay_ms: float = 50.0
    hang_seconds: float = 30.0
    seed: int = 0

    def updated(self, changes: Mapping[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied; ValueError on unknown keys or bad values."""
        names = {f.name: f for f in dataclasses.fields(self)}
        unknown = set(changes) - set(names)
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        new = dataclasses.replace(self, **changes)
        rates = [new.rate_429, new.rate_5xx, new.rate_drop, new.rate_slow, new.rate_malformed]
        if any(not isinstance(r, int | float) or r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError("fault rates must be >= 0 and sum to at most 1")
        if new.latency_ms < 0 or new.slow_chunks < 1 or new.slow_delay_ms < 0:
            raise ValueError("latency_ms, slow_chunks and slow_delay_ms must be positive")
        return new

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def draw(self, key: str, attempt: int) -> Outcome | None:
        """The rate fault for the ``attempt``-th request of ``key``, or None for a normal answer."""
        if not (
            self.rate_429
            or self.rate_5xx
            or self.rate_drop
            or self.rate_slow
            or self.rate_malformed
        ):
            return None
        digest = hashlib.blake2b(f"{self.seed}|{key}|{attempt}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        for rate, outcome in (
            (self.rate_429, Outcome("status", 429, self.retry_after)),
            (self.rate_5xx, Outcome("status", 503 if digest[0] & 1 else 500)),
            (self.rate_drop, Outcome("drop")),
            (self.rate_slow, Outcome("slow")),
            (self.rate_malformed, Outcome("malformed")),
        ):
            if u < rate:
                return outcome
            u -= rate
        return None


# --- responses -------------------------------------------------------------------------------

_JSON: Final = b"application/json"


def _error_body(status: int, message: str | list[str]) -> bytes:
    return json.dumps({"status": status, "errors": message}).encode()


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = _JSON,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, message: str | list[str]) -> None:
    await _respond(send, status, _error_body(status, message))


def _retry_after_header(value: float | str | None) -> list[tuple[bytes, bytes]]:
    if value is None:
        return []
    if isinstance(value, str) and value.startswith("+"):
        value = email.utils.formatdate(time.time() + float(value[1:]), usegmt=True)
    elif isinstance(value, int | float):
        value = str(int(value)) if float(value).is_integer() else str(value)
    return [(b"retry-after", str(value).encode())]


async def _drop(send: Send) -> None:
    """Close the socket without a response: the client sees a protocol/transport error.

    uvicorn hides the transport, but its ``send`` is a bound method of the request cycle that
    holds it; closing it and letting ``connection_lost`` run makes uvicorn skip its own 500.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None:
        transport.close()
        for _ in range(20):
            await asyncio.sleep(0)
            if getattr(cycle, "disconnected", True):
                return
        return
    # Fallback for other servers: promise a body that never comes.
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"999")]}
    )
    raise ConnectionAbortedError("sandbox dropped the connection on purpose")


async def _status_fault(send: Send, outcome: Outcome) -> None:
    code = outcome.status
    if code == 429:
        body = _error_body(429, "Too Many Requests")
        await _respond(send, 429, body, headers=_retry_after_header(outcome.retry_after))
    elif code in (502, 503, 504):
        await _respond(send, code, SERVICE_UNAVAILABLE_HTML, b"text/html; charset=utf-8")
    elif code >= 500:
        await _error(send, code, "Internal Server Error")
    elif code == 404:
        await _error(send, 404, "Interview not found")
    elif code == 401:
        await _error(send, 401, "Invalid or missing bearer token")
    else:
        await _error(send, code, f"HTTP {code}")


# --- interviews created through the API --------------------------------------------------------


@dataclass
class _Created:
    interview_id: str
    candidate_id: str
    session_id: str
    email: str
    interview_type: str
    role_title: str | None
    fullname: str | None
    metadata: dict[str, Any] | None
    seed: str
    iframe_url: str
    status: str | None = None  # set by the admin endpoint; else derived from ``gets``
    gets: int = 0
    bodies: dict[str, bytes] = field(default_factory=dict)
    times: dict[str, datetime] = field(default_factory=dict)


def _validate_create(data: object) -> list[str]:
    """Why a create body is refused (CONTRACT.md), or an empty list."""
    if not isinstance(data, dict):
        return ["body must be a JSON object"]
    problems = []
    email_ = data.get("email")
    if not isinstance(email_, str) or "@" not in email_:
        problems.append("email: required, an e-mail address")
    if data.get("interview_type") not in CREATE_INTERVIEW_TYPES:
        problems.append("interview_type: required, one of the create interview types")
    for key in ("talent_id", "name", "resume_url", "role_title"):
        if data.get(key) is not None and not isinstance(data[key], str):
            problems.append(f"{key}: must be a string")
    if data.get("language") is not None and data["language"] not in LANGUAGES:
        problems.append("language: not a supported language code")
    if data.get("metadata") is not None and not isinstance(data["metadata"], dict):
        problems.append("metadata: must be an object")
    return problems


# --- the ASGI app ----------------------------------------------------------------------------


class SandboxApp:
    """The ASGI application. All state lives on the event loop; tests reach it over HTTP."""

    def __init__(
        self,
        dataset: SandboxDataset | None = None,
        replay_dir: str | os.PathLike[str] | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        faults: FaultConfig | None = None,
        report_after_gets: int | None = None,
        asset_auth: bool = True,
    ) -> None:
        if (dataset is None) == (replay_dir is None):
            raise ValueError("give exactly one of dataset and replay_dir")
        if replay_dir is not None and not Path(replay_dir).is_dir():
            raise ValueError(f"replay directory {replay_dir} does not exist")
        self.dataset = dataset
        self.replay_dir = Path(replay_dir).resolve() if replay_dir is not None else None
        self.token = token
        self._auth = f"Bearer {token}".encode()
        self.initial_faults = faults or FaultConfig()
        self.faults = self.initial_faults
        self.report_after_gets = report_after_gets
        self.asset_auth = asset_auth
        self._sizes = dataset.sizes if dataset is not None else PayloadSizes()
        self._seed = dataset.seed if dataset is not None else 0
        self.created: dict[str, _Created] = {}
        self._n_created = 0
        self.reset()

    def reset(self) -> None:
        """Forget counters and scripts and restore the start-up fault settings."""
        self.total = 0
        self.by_path: Counter[str] = Counter()
        self.by_id: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self.scripts: dict[str, deque[Outcome]] = {}
        self.faults = self.initial_faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if not path.startswith(BASE_PATH + "/"):
            await _error(send, 404, f"no such path {path!r}")
            return
        rest = path[len(BASE_PATH) :]
        if rest.startswith("/_sandbox/"):
            await self._admin(scope["method"], rest[len("/_sandbox/") :], scope, receive, send)
        else:
            await self._api(scope["method"], rest, scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return bool(value == self._auth)
        return False

    # API

    async def _api(
        self, method: str, rest: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        label = self._label(method, rest)
        self.total += 1
        self.by_path[label] += 1
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        is_asset = rest.startswith("/assets/")
        if (self.asset_auth or not is_asset) and not self._authorized(scope):
            await _error(send, 401, "Invalid or missing bearer token")
            return
        if rest.startswith(DETAILS_PREFIX + "/") and len(rest) > len(DETAILS_PREFIX) + 1:
            if method != "GET":
                await _error(send, 405, "method not allowed")
                return
            await self._details(rest[len(DETAILS_PREFIX) + 1 :], receive, send)
        elif rest.rstrip("/") == DETAILS_PREFIX:
            if method != "POST":
                await _error(send, 405, "method not allowed")
                return
            await self._create(receive, send)
        elif is_asset:
            if method not in ("GET", "HEAD"):
                await _error(send, 405, "method not allowed")
                return
            await self._asset(rest[len("/assets/") :], receive, send)
        else:
            await _error(send, 404, f"no such endpoint {rest!r}")

    @staticmethod
    def _label(method: str, rest: str) -> str:
        if rest.startswith(DETAILS_PREFIX + "/"):
            return f"{method} {DETAILS_PREFIX}/{{interview_id}}"
        if rest.startswith("/assets/"):
            kind = rest[len("/assets/") :].split("/", 1)[0]
            return f"{method} /assets/{kind}"
        return f"{method} {rest}"

    def _next_outcome(self, key: str, rate_faults: bool) -> Outcome | None:
        self._attempts[key] += 1
        script = self.scripts.get(key)
        if script:
            outcome = script.popleft()
            if not script:
                del self.scripts[key]
            return outcome
        return self.faults.draw(key, self._attempts[key]) if rate_faults else None

    def _details_body(self, interview_id: str) -> bytes | None:
        created = self.created.get(interview_id)
        if created is not None:
            return self._created_body(created)
        if self.dataset is not None:
            return self.dataset.body(interview_id) if interview_id in self.dataset else None
        assert self.replay_dir is not None
        path = self.replay_dir / f"{interview_id}.json"
        return path.read_bytes() if path.is_file() else None

    async def _details(self, interview_id: str, receive: Receive, send: Send) -> None:
        self.by_id[interview_id] += 1
        if interview_id_problem(interview_id):
            await _error(send, 404, "Interview not found")
            return
        outcome = self._next_outcome(interview_id, rate_faults=True)
        if outcome is not None and outcome.kind in ("status", "drop"):
            await (_status_fault(send, outcome) if outcome.kind == "status" else _drop(send))
            return
        body = self._details_body(interview_id)
        if body is None:
            await _error(send, 404, "Interview not found")
            return
        content_type = b"text/html; charset=utf-8" if body[:1] == b"<" else _JSON
        await self._deliver(receive, send, body, content_type, outcome)

    async def _deliver(
        self,
        receive: Receive,
        send: Send,
        body: bytes,
        content_type: bytes,
        outcome: Outcome | None,
    ) -> None:
        """Send ``body`` whole, or slowly, or truncated, or after hanging, as ``outcome`` says."""
        if outcome is None or outcome.kind == "ok":
            await _respond(send, 200, body, content_type)
        elif outcome.kind == "malformed":
            await _respond(send, 200, body[: max(1, len(body) // 2)], content_type)
        elif outcome.kind == "hang":
            # Until the client gives up (or hang_seconds pass): a hung request must not hold
            # up the server's shutdown.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_disconnected(receive), self.faults.hang_seconds)
            await _respond(send, 200, body, content_type)
        else:  # slow: the whole body, in pieces with pauses between them
            n = self.faults.slow_chunks
            step = max(1, -(-len(body) // n))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", content_type),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            for start in range(0, len(body), step):
                piece = body[start : start + step]
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                await asyncio.sleep(self.faults.slow_delay_ms / 1000)
            await send({"type": "http.response.body", "body": b""})

    # create

    async def _create(self, receive: Receive, send: Send) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if len(raw) > MAX_REQUEST_BODY:
                await _error(send, 413, "request body too large")
                return
            if not message.get("more_body"):
                break
        try:
            data = json.loads(raw)
        except ValueError:
            await _error(send, 400, "request body is not JSON")
            return
        problems = _validate_create(data)
        if problems:
            await _error(send, 422, problems)
            return
        self._n_created += 1
        rng = random.Random(f"{self._seed}:created:{self._n_created}")
        candidate = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        interview_id = f"{uuid.UUID(int=rng.getrandbits(128), version=4)}_{candidate}"
        session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        iframe = f"https://sandbox.qode.invalid/interview/{interview_id[:8]}"
        self.created[interview_id] = _Created(
            interview_id=interview_id,
            candidate_id=candidate,
            session_id=session,
            email=data["email"],
            interview_type=data["interview_type"],
            role_title=data.get("role_title"),
            fullname=data.get("name"),
            metadata=data.get("metadata"),
            seed=f"{self._seed}:created:{self._n_created}:doc",
            iframe_url=iframe,
        )
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
        response = {
            "interview_id": interview_id,
            "candidate_id": candidate,
            "iframe_url": iframe,
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "email": data["email"],
            "talent_id": data.get("talent_id"),
            "completion_status": "SCHEDULED",
            "session_id": session,
        }
        await _respond(send, 200, json.dumps(response).encode())

    def _created_body(self, created: _Created) -> bytes:
        created.gets += 1
        status = created.status
        if status is None:
            after = self.report_after_gets
            ready = after is not None and created.gets > after
            status = "REPORT_GENERATED" if ready else "SCHEDULED"
        body = created.bodies.get(status)
        if body is None:
            when = created.times.setdefault(status, datetime.now(UTC).replace(microsecond=0))
            body = build_interview(
                interview_id=created.interview_id,
                candidate_id=created.candidate_id,
                email=created.email,
                interview_type=created.interview_type,
                status=status,
                timestamp=when,
                seed=created.seed,
                role_title=created.role_title,
                fullname=created.fullname,
                metadata=created.metadata,
                session_id=created.session_id,
                iframe_url=created.iframe_url,
                sizes=self._sizes,
            )
            created.bodies[status] = body
        return body

    # assets

    async def _asset(self, rel: str, receive: Receive, send: Send) -> None:
        if rel.startswith("blob/") and rel.endswith(".bin"):
            await self._blob(rel[len("blob/") : -len(".bin")], send)
            return
        if rel == "redirect-offsite":
            await _respond(send, 302, b"", b"text/plain", [(b"location", OFFSITE_URL.encode())])
            return
        if rel.startswith("redirect-onsite/"):
            target = f"{BASE_PATH}/assets/{rel[len('redirect-onsite/') :]}"
            await _respond(send, 302, b"", b"text/plain", [(b"location", target.encode())])
            return
        outcome = self._next_outcome(f"assets/{rel}", rate_faults=False)
        if outcome is not None and outcome.kind in ("status", "drop"):
            await (_status_fault(send, outcome) if outcome.kind == "status" else _drop(send))
            return
        if self.replay_dir is not None:
            await self._replay_file(rel, receive, send, outcome)
            return
        name = rel[len("identity/") :] if rel.startswith("identity/") else ""
        interview_id = name[: -len(".png")] if name.endswith(".png") else ""
        known = interview_id in self.created or (
            self.dataset is not None and interview_id in self.dataset
        )
        if not known:
            await _error(send, 404, f"no asset {rel!r}")
            return
        png = make_png(f"{self._seed}:{interview_id}", self._sizes.asset_bytes)
        await self._deliver(receive, send, png, b"image/png", outcome)

    async def _blob(self, size_text: str, send: Send) -> None:
        if not size_text.isdigit() or int(size_text) > MAX_BLOB_BYTES:
            await _error(send, 404, f"blob size must be 0..{MAX_BLOB_BYTES} bytes")
            return
        size = int(size_text)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(size).encode()),
                ],
            }
        )
        for piece in blob_chunks(size):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _replay_file(
        self, rel: str, receive: Receive, send: Send, outcome: Outcome | None
    ) -> None:
        assert self.replay_dir is not None
        parts = rel.split("/")
        target = (self.replay_dir / "assets" / rel).resolve()
        if ".." in parts or "\\" in rel or not target.is_relative_to(self.replay_dir):
            await _error(send, 400, "path traversal refused")
            return
        if not target.is_file():
            await _error(send, 404, f"no asset {rel!r}")
            return
        content_type = (mimetypes.guess_type(target.name)[0] or "application/octet-stream").encode()
        size = target.stat().st_size
        if size <= 1024 * 1024 or outcome is not None:
            await self._deliver(receive, send, target.read_bytes(), content_type, outcome)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(size).encode()),
                ],
            }
        )
        with target.open("rb") as handle:
            while piece := handle.read(256 * 1024):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    # admin

    async def _admin(
        self, method: str, what: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        try:
            if what == "stats" and method == "GET":
                payload: Any = {
                    "total": self.total,
                    "by_path": dict(self.by_path),
                    "by_id": dict(self.by_id),
                    "created": len(self.created),
                }
            elif what == "reset" and method == "POST":
                self.reset()
                payload = {"reset": True}
            elif what == "faults" and method in ("GET", "POST"):
                if method == "POST":
                    self._set_faults(json.loads(await _read_body(receive) or b"{}"))
                payload = self._faults_state()
            elif what == "expected" and method == "GET":
                await self._expected(send)
                return
            elif what == "ids" and method == "GET":
                payload = self.dataset.ids if self.dataset is not None else self._replay_ids()
            elif what == "events" and method == "GET":
                await self._events(scope, send)
                return
            elif what.startswith("interviews/") and what.endswith("/status") and method == "POST":
                interview_id = what[len("interviews/") : -len("/status")]
                created = self.created.get(interview_id)
                if created is None:
                    await _error(send, 404, "only interviews created through the API can move")
                    return
                status = json.loads(await _read_body(receive) or b"{}").get("status")
                if not isinstance(status, str) or status.upper() not in STATUSES:
                    raise ValueError(f"status must be one of {STATUSES}")
                created.status = status.upper()
                payload = {"interview_id": interview_id, "status": created.status}
            else:
                await _error(send, 404, f"no sandbox endpoint {method} {what!r}")
                return
        except (ValueError, TypeError, AttributeError) as exc:
            await _error(send, 400, str(exc))
            return
        await _respond(send, 200, json.dumps(payload, ensure_ascii=False).encode())

    def _set_faults(self, data: object) -> None:
        if not isinstance(data, dict):
            raise ValueError("fault settings must be a JSON object")
        changes = dict(data)
        script = changes.pop("script", None)
        script = {} if script is None else script
        if not isinstance(script, dict):
            raise ValueError('"script" must map an interview id or asset path to a list')
        new = self.faults.updated(changes)
        parsed = {}
        for key, entries in script.items():
            if not isinstance(entries, list):
                raise ValueError(f"script for {key!r} must be a list")
            parsed[key] = deque(parse_outcome(e, new.retry_after) for e in entries)
        self.faults = new
        for key, outcomes in parsed.items():
            if outcomes:
                self.scripts[key] = outcomes
            else:
                self.scripts.pop(key, None)

    def _faults_state(self) -> dict[str, Any]:
        return {
            **self.faults.to_dict(),
            "script": {k: [o.to_json() for o in v] for k, v in self.scripts.items()},
        }

    def _replay_ids(self) -> list[str]:
        assert self.replay_dir is not None
        return sorted(p.stem for p in self.replay_dir.glob("*.json") if p.name != "expected.json")

    async def _expected(self, send: Send) -> None:
        if self.dataset is not None:
            body = json.dumps(
                {i: e.to_dict() for i, e in self.dataset.expected_all().items()},
                ensure_ascii=False,
            ).encode()
        else:
            assert self.replay_dir is not None
            path = self.replay_dir / "expected.json"
            body = path.read_bytes() if path.is_file() else b"{}"
        await _respond(send, 200, body)

    async def _events(self, scope: Scope, send: Send) -> None:
        query = dict(
            pair.split("=", 1) for pair in scope["query_string"].decode().split("&") if "=" in pair
        )
        day = date.fromisoformat(query.get("date", ""))
        if self.dataset is not None:
            body = self.dataset.events_jsonl(day)
        else:
            assert self.replay_dir is not None
            path = self.replay_dir / "events" / f"{day.isoformat()}.jsonl"
            body = path.read_bytes() if path.is_file() else b""
        await _respond(send, 200, body, b"application/x-ndjson")


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone away."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(receive: Receive) -> bytes:
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if len(raw) > MAX_REQUEST_BODY:
            raise ValueError("request body too large")
        if not message.get("more_body"):
            return raw


# --- running it ------------------------------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising SIGINT/SIGTERM after shutdown, so the CLI exits with 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket; with ``port=0`` the kernel picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def base_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{BASE_PATH}"


def make_uvicorn(app: SandboxApp) -> uvicorn.Server:
    """A quiet uvicorn server for ``app``: no access log, short graceful shutdown."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=30,
        backlog=2048,
    )
    return _Server(config)


class SandboxAdmin:
    """Client of the ``/_sandbox`` admin endpoints, for a server in a thread or a process."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def _call(self, method: str, what: str, payload: Any = None) -> Any:
        response = httpx.request(
            method, f"{self.base_url}/_sandbox/{what}", json=payload, timeout=60, trust_env=False
        )
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        """``{"total": n, "by_path": {...}, "by_id": {id: count}, "created": n}``."""
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def reset(self) -> None:
        """Zero the counters, drop pending scripts, restore the start-up fault settings."""
        self._call("POST", "reset")

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change global fault settings (``FaultConfig`` names) and/or add ``script={...}``."""
        result: dict[str, Any] = self._call("POST", "faults", changes)
        return result

    def script(self, key: str, outcomes: Sequence[object]) -> None:
        """The next requests for ``key`` (an interview id, or ``assets/identity/<id>.png``)
        get ``outcomes`` in order, then normal answers."""
        self._call("POST", "faults", {"script": {key: list(outcomes)}})

    def expected(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self._call("GET", "expected")
        return result

    def ids(self) -> list[str]:
        result: list[str] = self._call("GET", "ids")
        return result

    def set_status(self, interview_id: str, status: str) -> None:
        """Move an interview created through the API to ``status``."""
        self._call("POST", f"interviews/{interview_id}/status", {"status": status})


class SandboxServer(SandboxAdmin):
    """The sandbox in a background thread of this process: cheap to start, for tests and demos.

    ``source`` is a :class:`SandboxDataset` or a replay directory (``<id>.json`` files served
    byte for byte). Use as a context manager, or ``start()``/``stop()``.
    """

    def __init__(
        self,
        source: SandboxDataset | str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        latency_ms: float | None = None,
        faults: FaultConfig | Mapping[str, Any] | None = None,
        report_after_gets: int | None = None,
        asset_auth: bool = True,
    ) -> None:
        config = faults if isinstance(faults, FaultConfig) else FaultConfig().updated(faults or {})
        if latency_ms is not None:
            config = config.updated({"latency_ms": latency_ms})
        source = SandboxDataset() if source is None else source
        dataset = source if isinstance(source, SandboxDataset) else None
        replay = None if isinstance(source, SandboxDataset) else source
        self.app = SandboxApp(
            dataset,
            replay,
            token=token,
            faults=config,
            report_after_gets=report_after_gets,
            asset_auth=asset_auth,
        )
        self.dataset = dataset
        self.token = token
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        super().__init__("")

    def start(self) -> SandboxServer:
        """Listen, serve in a daemon thread, return once requests are answered."""
        if self._thread is not None:
            return self
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self.base_url = base_url_of(sock)
        server = make_uvicorn(self.app)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="qode-sandbox", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.005)
        self._sock, self._server, self._thread = sock, server, thread
        return self

    def stop(self) -> None:
        """Shut down and join the thread (idempotent)."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._sock.close()
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no base path), for Airflow connections that want a host."""
        return self.base_url[: -len(BASE_PATH)]

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_sandbox_process(
    args: Sequence[str] = (),
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the sandbox CLI in its own process (``--port 0`` unless given) and return it with
    the base URL it printed; the caller terminates it (or use :func:`sandbox_process`)."""
    argv = list(args)
    if "--port" not in argv and not any(a.startswith("--port=") for a in argv):
        argv += ["--port", "0"]
    # stderr goes to a file: an unread pipe would block a long-running server once it fills.
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the child, closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_qode.sandbox.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=errors,
        env={**os.environ, **(env or {})},
    )
    lines: queue.Queue[bytes] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout).decode().strip()
    except queue.Empty:
        line = ""
    if not line.startswith("http"):
        proc.kill()
        proc.wait(timeout=10)
        errors.seek(0)
        tail = errors.read()[-2000:].decode(errors="replace")
        errors.close()
        raise RuntimeError(f"sandbox process did not start: {tail}")
    errors.close()  # the child keeps its own handle
    return proc, line


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Stop a server process politely (SIGTERM), then firmly, and close its pipes."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@contextlib.contextmanager
def sandbox_process(args: Sequence[str] = (), *, timeout: float = 60.0) -> Iterator[str]:
    """:func:`run_sandbox_process` as a context manager yielding the base URL."""
    proc, base_url = run_sandbox_process(args, timeout=timeout)
    try:
        yield base_url
    finally:
        stop_process(proc)
