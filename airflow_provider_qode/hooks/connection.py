"""Every reading of a ``qode`` Airflow connection happens here, once, into a frozen config.

Connection fields: host = API base URL (``https://turing.gomu.ai/api/v1``, or a bare host name
with the scheme in *schema*), password = API token. Extras (all optional) are listed in
:data:`EXTRA_FIELDS`, which also feeds the connection form.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_qode.exceptions import QodeConfigError

DEFAULT_BASE_URL = "https://turing.gomu.ai/api/v1"
DEFAULT_BASE_PATH = "/api/v1"

#: Extra key -> (type, default, help): the one list of accepted extras (an unknown key is an
#: error, so a typo never goes unnoticed). Defaults suit the real API; tests shorten the waits.
EXTRA_FIELDS: dict[str, tuple[type, Any, str]] = {
    "timeout": (float, 30.0, "Seconds to wait for a response (connect, read, write)."),
    "max_retries": (int, 5, "Retries after a 429, a 5xx, a timeout or a dropped connection."),
    "backoff_base": (float, 0.5, "First backoff in seconds; doubles per retry, with jitter."),
    "backoff_max": (float, 30.0, "Longest single backoff in seconds."),
    "retry_after_max": (float, 120.0, "Longest wait a Retry-After header may impose, in seconds."),
    "max_concurrency": (int, 32, "Requests in flight at once when fetching many interviews."),
    "asset_base_url": (str, None, "Base URL for relative asset paths (default: the API base)."),
    "allowed_asset_hosts": (list, None, "Hosts assets may come from (default: the asset base's)."),
    "max_asset_bytes": (int, 2 * 1024**3, "Largest asset accepted, in bytes."),
    "max_body_bytes": (int, 32 * 1024**2, "Largest interview body accepted, in bytes."),
    "base_path": (str, None, "API path when the host field is a bare host name (/api/v1)."),
}


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1: the only hosts allowed over plain http."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class QodeConnectionConfig:
    """What the hook needs from a connection; the token is kept out of ``repr``."""

    base_url: str = DEFAULT_BASE_URL
    token: str = dataclasses.field(default="", repr=False)
    timeout: float = 30.0
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    max_concurrency: int = 32
    asset_base_url: str = ""
    allowed_asset_hosts: frozenset[str] = frozenset()
    max_asset_bytes: int = 2 * 1024**3
    max_body_bytes: int = 32 * 1024**2

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise QodeConfigError(f"Qode base URL {self.base_url!r} is not an http(s) URL")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise QodeConfigError("Qode base URL must use https (http only for loopback)")
        if self.max_retries < 0 or self.max_concurrency < 1 or self.timeout <= 0:
            raise QodeConfigError("max_retries >= 0, max_concurrency >= 1 and timeout > 0 needed")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if not self.asset_base_url:
            object.__setattr__(self, "asset_base_url", self.base_url)
        if not self.allowed_asset_hosts:
            host = urlsplit(self.asset_base_url).hostname or ""
            object.__setattr__(self, "allowed_asset_hosts", frozenset({host}))

    @classmethod
    def from_fields(
        cls,
        *,
        host: str | None,
        schema: str | None = None,
        port: int | None = None,
        password: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> QodeConnectionConfig:
        """Build from the fields of an Airflow connection (sync or async, same parsing)."""
        extra = dict(extra or {})
        unknown = set(extra) - set(EXTRA_FIELDS)
        if unknown:
            raise QodeConfigError(f"unknown extras in the qode connection: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, (kind, _default, _help) in EXTRA_FIELDS.items():
            if key == "base_path" or extra.get(key) in (None, ""):
                continue
            raw = extra[key]
            try:
                if kind is list:
                    items = raw.split(",") if isinstance(raw, str) else list(raw)
                    hosts = (str(h).strip().lower() for h in items)
                    values[key] = frozenset(h for h in hosts if h)
                else:
                    values[key] = kind(raw)
            except (TypeError, ValueError):
                raise QodeConfigError(
                    f"extra {key!r} must be {kind.__name__}, got {raw!r}"
                ) from None
        return cls(
            base_url=_base_url(host, schema, port, extra.get("base_path")),
            token=password or "",
            **values,
        )


def _base_url(host: str | None, schema: str | None, port: int | None, base_path: Any) -> str:
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" in host:
        parts = urlsplit(host)
        if port and not parts.port:
            host = parts._replace(netloc=f"{parts.netloc}:{port}").geturl()
        return host
    scheme = (schema or "https").strip() or "https"
    netloc = f"{host}:{port}" if port else host
    path = str(base_path) if base_path else DEFAULT_BASE_PATH
    return f"{scheme}://{netloc}/{path.strip('/')}"
