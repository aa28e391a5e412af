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

DEFAULT_BASE_URL = "https://turing.gomu.ai/api/v1"
DEFAULT_BASE_PATH = "/api/v1"

_JSON_TYPES: dict[type, str] = {float: "number", int: "integer", str: "string", list: "array"}


@dataclasses.dataclass(frozen=True)
class ExtraField:
    """One accepted extra: how it is parsed, its default, and how the connection form shows it."""

    kind: type
    default: Any
    label: str
    description: str

    def conn_field(self) -> dict[str, Any]:
        """The ``conn-fields`` entry of the provider info (a JSON schema Airflow's form renders)."""
        schema: dict[str, Any] = {"type": [_JSON_TYPES[self.kind], "null"]}
        if self.kind is list:
            schema["items"] = {"type": "string"}
        if self.default is not None:
            schema["default"] = self.default
        return {"label": self.label, "description": self.description, "schema": schema}


#: The one list of accepted extras (an unknown key is an error, so a typo never goes unnoticed):
#: it drives :meth:`QodeConnectionConfig.from_fields`, the config's defaults and, through
#: :func:`connection_form`, the connection form. Defaults suit the real API.
EXTRA_FIELDS: dict[str, ExtraField] = {
    "timeout": ExtraField(
        float, 30.0, "Timeout (s)", "Seconds to wait for a response (connect, read, write)."
    ),
    "max_retries": ExtraField(
        int, 5, "Max retries", "Retries after a 429, a 5xx, a timeout or a dropped connection."
    ),
    "backoff_base": ExtraField(
        float, 0.5, "Backoff base (s)", "First backoff in seconds; doubles per retry, with jitter."
    ),
    "backoff_max": ExtraField(float, 30.0, "Backoff max (s)", "Longest single backoff in seconds."),
    "retry_after_max": ExtraField(
        float,
        120.0,
        "Retry-After max (s)",
        "Longest wait a Retry-After header may impose, in seconds.",
    ),
    "max_concurrency": ExtraField(
        int,
        32,
        "Max concurrency",
        "Requests in flight at once when fetching many interviews.",
    ),
    "asset_base_url": ExtraField(
        str,
        None,
        "Asset base URL",
        "Base URL for relative asset paths (default: the API base URL).",
    ),
    "allowed_asset_hosts": ExtraField(
        list,
        None,
        "Allowed asset hosts",
        "Hosts assets may be downloaded from, one per line (default: the asset base's host).",
    ),
    "max_asset_bytes": ExtraField(
        int, 2 * 1024**3, "Max asset bytes", "Largest asset accepted, in bytes."
    ),
    "max_body_bytes": ExtraField(
        int, 32 * 1024**2, "Max body bytes", "Largest interview body accepted, in bytes."
    ),
    "base_path": ExtraField(
        str,
        None,
        "Base path",
        "API path when the host field is a bare host name (default: /api/v1).",
    ),
}


def connection_form() -> dict[str, Any]:
    """The form keys of the provider info's ``connection-types`` entry (Airflow 3.3 UI).

    Built from :data:`EXTRA_FIELDS`; this module imports only the standard library at load
    time because ``get_provider_info()`` runs on every ``import airflow``.
    """
    return {
        "ui-field-behaviour": {
            "hidden-fields": ["login", "schema", "port"],
            "relabeling": {"host": "API base URL", "password": "API token"},
            "placeholders": {
                "host": DEFAULT_BASE_URL,
                "password": "Qode API token (sent as a Bearer token)",
            },
        },
        "conn-fields": {key: field.conn_field() for key, field in EXTRA_FIELDS.items()},
    }


def _default(key: str) -> Any:
    return EXTRA_FIELDS[key].default


def _config_error(message: str) -> Exception:
    # Imported late: the exceptions module pulls in airflow, which this module must not.
    from airflow_provider_qode.exceptions import QodeConfigError

    return QodeConfigError(message)


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
    timeout: float = _default("timeout")
    max_retries: int = _default("max_retries")
    backoff_base: float = _default("backoff_base")
    backoff_max: float = _default("backoff_max")
    retry_after_max: float = _default("retry_after_max")
    max_concurrency: int = _default("max_concurrency")
    asset_base_url: str = ""
    allowed_asset_hosts: frozenset[str] = frozenset()
    max_asset_bytes: int = _default("max_asset_bytes")
    max_body_bytes: int = _default("max_body_bytes")

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise _config_error(f"Qode base URL {self.base_url!r} is not an http(s) URL")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise _config_error("Qode base URL must use https (http only for loopback)")
        if self.max_retries < 0 or self.max_concurrency < 1 or self.timeout <= 0:
            raise _config_error("max_retries >= 0, max_concurrency >= 1 and timeout > 0 needed")
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
            raise _config_error(f"unknown extras in the qode connection: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, field in EXTRA_FIELDS.items():
            if key == "base_path" or extra.get(key) in (None, ""):
                continue
            raw = extra[key]
            try:
                if field.kind is list:
                    items = raw.split(",") if isinstance(raw, str) else list(raw)
                    hosts = (str(h).strip().lower() for h in items)
                    values[key] = frozenset(h for h in hosts if h)
                else:
                    values[key] = field.kind(raw)
            except (TypeError, ValueError):
                raise _config_error(
                    f"extra {key!r} must be {field.kind.__name__}, got {raw!r}"
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
