"""Domain exceptions: callers branch on the failure, never on message text.

They subclass ``AirflowException`` so that a task failing on one shows the Qode reason in the
Airflow UI; the hierarchy says which failures were retried and which must not be.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class QodeError(AirflowException):
    """Base of every error this provider raises on purpose."""


class QodeConfigError(QodeError):
    """The Airflow connection or an operator argument is unusable."""


class QodeInvalidIdError(QodeError, ValueError):
    """An interview id that must not reach a URL or an S3 key (refused before any request)."""


class QodeAPIError(QodeError):
    """The API answered with an error status."""

    def __init__(self, message: str, *, http_status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.body = body


class QodeAuthError(QodeAPIError):
    """401/403: the token is wrong or lacks rights. Never retried."""


class QodeNotFoundError(QodeAPIError):
    """404: Qode does not know this interview. Not retried; recorded as missing."""


class QodeRateLimitError(QodeAPIError):
    """429 still answered after every retry was spent."""


class QodeServerError(QodeAPIError):
    """5xx still answered after every retry was spent."""


class QodeConnectionError(QodeError):
    """Connection failures or timeouts that outlasted every retry."""


class QodeResponseError(QodeError):
    """A 200 whose body is not a readable interview. Carries the raw bytes, so nothing is lost."""

    def __init__(self, message: str, *, raw: bytes, interview_id: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.interview_id = interview_id


class QodeInterviewFailedError(QodeError, AirflowFailException):
    """The interview ended without a report (no-show, drop-off, glitch, abort): retrying the
    task cannot change that, so Airflow fails it without retries."""


class QodeAssetError(QodeError):
    """An asset reference was refused (host, scheme, redirect, size) or could not be fetched."""


__all__ = [
    "QodeAPIError",
    "QodeAssetError",
    "QodeAuthError",
    "QodeConfigError",
    "QodeConnectionError",
    "QodeError",
    "QodeInterviewFailedError",
    "QodeInvalidIdError",
    "QodeNotFoundError",
    "QodeRateLimitError",
    "QodeResponseError",
    "QodeServerError",
]
