"""When to retry a Qode call and how long to wait: one policy for the sync and async clients.

The loops that send requests only ask :class:`RetryState` what to do next, so the rules of
CONTRACT.md (401 never retried, 404 final, 429 after ``Retry-After``, 5xx and transport errors
with exponential backoff and jitter) are written once.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from airflow_provider_qode.exceptions import (
    QodeAPIError,
    QodeAuthError,
    QodeConnectionError,
    QodeNotFoundError,
    QodeRateLimitError,
    QodeServerError,
)
from airflow_provider_qode.hooks.redact import Redactor
from airflow_provider_qode.models import describe_body

#: How much of an error answer is read: enough for the API's message, never a bomb's worth.
ERROR_BODY_BYTES = 64 * 1024


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_detail(body: bytes) -> str:
    """The API's own words for an error: ``errors`` of a JSON body, else a body description.

    Total: a body nested too deep to parse or print (RecursionError) is only described.
    """
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "errors" in data:
            errors = data["errors"]
            text = "; ".join(map(str, errors)) if isinstance(errors, list) else str(errors)
            return text[:300]
    except (ValueError, RecursionError):
        pass
    return describe_body(body)


class WarningLog(Protocol):
    """Any logger with ``warning(msg, *args)``: stdlib or Airflow's structlog loggers."""

    def warning(self, event: Any, *args: Any, **kw: Any) -> Any: ...


@dataclass
class RetryState:
    """Counts attempts of one logical call and decides, per outcome, to wait or to raise."""

    what: str
    max_retries: int
    backoff_base: float
    backoff_max: float
    retry_after_max: float
    retryable: bool = True
    redactor: Redactor = field(default_factory=Redactor)
    attempt: int = 0
    #: Why the last attempt failed (``HTTP 503``, ``ReadTimeout``): logged, never a body.
    reason: str = ""
    rng: random.Random = field(default_factory=random.Random)

    def _backoff(self) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (self.attempt - 1)))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def _spent(self) -> bool:
        return not self.retryable or self.attempt > self.max_retries

    def after_response(self, response: httpx.Response, body: bytes) -> float | None:
        """None when ``response`` is the answer; else seconds to wait before the next try."""
        self.attempt += 1
        status = response.status_code
        if 200 <= status < 300:
            return None
        self.reason = f"HTTP {status}"
        body = self.redactor.body(body[:ERROR_BODY_BYTES])
        detail = self.redactor.text(f"{self.what}: HTTP {status}: {error_detail(body)}")
        if status in (401, 403):
            raise QodeAuthError(detail + " (check the connection's token)", http_status=status)
        if status == 404:
            raise QodeNotFoundError(detail, http_status=status, body=body)
        if status == 429:
            if self._spent():
                raise QodeRateLimitError(
                    f"{detail} (after {self.attempt} attempts)", http_status=status, body=body
                )
            wait = parse_retry_after(response.headers.get("Retry-After"))
            return min(self.retry_after_max, wait) if wait is not None else self._backoff()
        if status >= 500:
            if self._spent():
                raise QodeServerError(
                    f"{detail} (after {self.attempt} attempts)", http_status=status, body=body
                )
            return self._backoff()
        if 300 <= status < 400:
            location = response.headers.get("Location", "no Location")
            detail = self.redactor.text(
                f"{self.what}: unexpected HTTP {status} redirect to {location}"
            )
        raise QodeAPIError(detail, http_status=status, body=body)

    def after_error(self, exc: httpx.TransportError) -> float:
        """Seconds to wait after a timeout or connection failure; raises once retries are spent."""
        self.attempt += 1
        self.reason = type(exc).__name__
        if self._spent():
            raise QodeConnectionError(
                self.redactor.text(
                    f"{self.what}: {type(exc).__name__}: {exc or 'connection failed'} "
                    f"(after {self.attempt} attempts)"
                )
            ) from exc
        return self._backoff()

    def log_retry(self, log: WarningLog, delay: float) -> None:
        """One WARNING per retry, like the HTTP provider's async hook: what, try, reason, wait."""
        log.warning(
            "[Try %d of %d] %s failed (%s); retrying in %.2fs",
            self.attempt,
            self.max_retries + 1,
            self.what,
            self.reason,
            delay,
        )
