"""Interview events (JSON Lines under an S3 prefix) -> the ids that finished in a time window.

Qode's event delivery is undocumented; CONTRACT.md assumes a customer's receiver writes each
event as one JSON line. A line we cannot read (not strict JSON, see ``models.loads_strict``; no
real timestamp; or anything else that fails on it) is counted and reported, never fatal: one bad
line must not hide a day's interviews.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from airflow_provider_qode.models import (
    InterviewEvent,
    interview_id_problem,
    loads_strict,
    parse_timestamp,
    unicode_text,
)


@dataclass
class TerminalIds:
    """What a scan of event files found."""

    interview_ids: list[str] = field(default_factory=list)
    events_read: int = 0
    unreadable_lines: list[str] = field(default_factory=list)
    refused_ids: list[str] = field(default_factory=list)


def terminal_interview_ids(
    lines: Iterable[tuple[str, int, bytes]], start: datetime, end: datetime
) -> TerminalIds:
    """Ids whose latest event with ``start <= timestamp < end`` is terminal, de-duplicated.

    ``lines`` yields ``(source, line_number, raw_line)`` so a bad line can be pointed at.
    The result is sorted, so reruns split the same ids into the same chunks.
    """
    latest: dict[str, tuple[datetime, bool]] = {}
    found = TerminalIds()
    for source, number, raw in lines:
        if not raw.strip():
            continue
        try:
            event = InterviewEvent.model_validate(loads_strict(raw))
            when = parse_timestamp(event.timestamp)
        except (ValueError, ValidationError) as exc:
            found.unreadable_lines.append(f"{source}:{number}: {_first_line(exc)}")
            continue
        except Exception as exc:  # last resort: one line never fails the day
            reason = f"unexpected {type(exc).__name__}: {_first_line(exc)}"
            found.unreadable_lines.append(f"{source}:{number}: {reason}")
            continue
        found.events_read += 1
        if not start <= when < end:
            continue
        previous = latest.get(event.interview_id)
        if previous is None or when >= previous[0]:
            latest[event.interview_id] = (when, event.terminal)
    for interview_id, (_when, terminal) in sorted(latest.items()):
        if not terminal:
            continue
        if interview_id_problem(interview_id):
            found.refused_ids.append(interview_id)
        else:
            found.interview_ids.append(interview_id)
    return found


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines() or [type(exc).__name__]
    return unicode_text(lines[0][:160])


def chunked(items: list[str], size: int) -> list[list[str]]:
    """Split ``items`` into consecutive chunks of at most ``size`` (one mapped task each)."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)]
