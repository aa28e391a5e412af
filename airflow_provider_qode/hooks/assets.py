"""Asset references are untrusted input: resolve them to a URL we are willing to fetch, or refuse.

A payload names an asset by an absolute URL or by a path relative to the asset base URL. We fetch
only https (http for loopback, which is how tests run), only from allowed host *and port*, never
with credentials in the URL, never a path that climbs out of the base, and never one of the
API's own endpoints (the token would fetch another interview's JSON and store it as a picture).
Every refusal, malformed URLs included, is a :class:`QodeAssetError`; messages never show a
signed URL's query string.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, urlsplit

import httpx

from airflow_provider_qode.exceptions import QodeAssetError
from airflow_provider_qode.hooks.connection import is_loopback
from airflow_provider_qode.hooks.redact import redact_text, strip_query

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_REFERENCE_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Endpoint paths under the API base path that an asset reference may never name.
API_ENDPOINT_PREFIXES = ("/integrations/",)
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class AssetInfo:
    """What was streamed: enough for a manifest without holding the bytes."""

    url: str
    size: int
    sha256: str
    content_type: str | None


def shown(url: str) -> str:
    """How a URL or reference appears in messages and logs: quoted, without its query."""
    return repr(strip_query(url))


@dataclass(frozen=True)
class Origin:
    """Scheme, host and effective port of a URL: what "the same server" means here."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of ``url``; :class:`QodeAssetError` for anything httpx or urllib reject."""
        try:
            parts = urlsplit(url)
            port = parts.port
            parsed = httpx.URL(url)
        except (ValueError, httpx.InvalidURL) as exc:
            reason = redact_text(str(exc))
            raise QodeAssetError(f"asset URL {shown(url)} is malformed: {reason}") from None
        if not parts.netloc.isascii():
            raise QodeAssetError(
                f"asset URL {shown(url)}: non-ASCII host or port (write IDNA hosts as xn--)"
            )
        scheme = parts.scheme.lower()
        host = (parsed.host or "").lower()
        return cls(scheme, host, port or DEFAULT_PORTS.get(scheme, 0))


def _allowed(origin: Origin, allowed_hosts: frozenset[str], home_port: int) -> bool:
    """``host:port`` entries allow exactly that; a bare host its scheme's default port and the
    asset base URL's port (so a loopback stand-in on a free port works unchanged)."""
    hosts = {origin.host, f"[{origin.host}]"}
    if any(f"{host}:{origin.port}" in allowed_hosts for host in hosts):
        return True
    bare = not hosts.isdisjoint(allowed_hosts)
    return bare and origin.port in (DEFAULT_PORTS.get(origin.scheme), home_port)


def _normalized(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/")).lower()


def _is_api_endpoint(url: str, api_base_url: str) -> bool:
    """True if ``url`` names one of the API's own endpoints, however its path is spelled."""
    api = Origin.of(api_base_url)
    if Origin.of(url) != api:
        return False
    path = _normalized(unquote(httpx.URL(url).path))
    base = _normalized(urlsplit(api_base_url).path).rstrip("/")
    rest = path[len(base) :] + "/" if path.startswith(base) else ""
    return any(rest.startswith(prefix) for prefix in API_ENDPOINT_PREFIXES)


def check_asset_url(
    url: str,
    allowed_hosts: frozenset[str],
    *,
    asset_base_url: str | None = None,
    api_base_url: str | None = None,
) -> str:
    """Return ``url`` if it may be fetched, else raise :class:`QodeAssetError` saying why."""
    origin = Origin.of(url)
    parts = urlsplit(url)
    if origin.scheme not in ("https", "http"):
        raise QodeAssetError(f"asset URL {shown(url)}: scheme {origin.scheme!r} is not allowed")
    if origin.scheme == "http" and not is_loopback(origin.host):
        raise QodeAssetError(
            f"asset URL {shown(url)}: plain http is only allowed for loopback hosts"
        )
    if parts.username or parts.password:
        raise QodeAssetError(f"asset URL {shown(url)}: credentials in the URL are not allowed")
    home_port = Origin.of(asset_base_url).port if asset_base_url else 0
    if not _allowed(origin, allowed_hosts, home_port):
        raise QodeAssetError(
            f"asset URL {shown(url)}: {origin.host}:{origin.port} is not in the allowed asset "
            f"hosts {sorted(allowed_hosts)}"
        )
    if api_base_url and _is_api_endpoint(url, api_base_url):
        raise QodeAssetError(f"asset URL {shown(url)} names an API endpoint, not an asset")
    return url


def resolve_asset_url(
    reference: str,
    asset_base_url: str,
    allowed_hosts: frozenset[str],
    *,
    api_base_url: str | None = None,
) -> str:
    """Turn a payload's asset reference into a checked absolute URL."""
    if not isinstance(reference, str) or not reference.strip():
        raise QodeAssetError("asset reference is empty")
    if len(reference) > MAX_REFERENCE_LENGTH or _CONTROL.search(reference):
        raise QodeAssetError("asset reference is too long or contains control characters")
    if "\\" in reference:
        raise QodeAssetError(f"asset reference {shown(reference)} contains a backslash")
    rules = {"asset_base_url": asset_base_url, "api_base_url": api_base_url}
    if "://" in reference or reference.startswith("//"):
        return check_asset_url(reference, allowed_hosts, **rules)
    raw_path, _, query = reference.split("#", 1)[0].partition("?")
    path = PurePosixPath(unquote(raw_path))
    if path.is_absolute() or ".." in path.parts:
        raise QodeAssetError(f"asset path {shown(reference)} leaves the asset base URL")
    url = f"{asset_base_url.rstrip('/')}/{quote(str(path), safe='/')}"
    if query:  # signed asset URLs carry their signature in the query
        url += "?" + query
    return check_asset_url(url, allowed_hosts, **rules)


def stored_content_type(url: str, served: str | None) -> str:
    """The Content-Type to store: the served one only if it is what the URL's name claims.

    An HTML error page served as ``x.png``, or a name that claims nothing, is stored as
    ``application/octet-stream`` so that no browser renders it from the lake.
    """
    claimed, _ = mimetypes.guess_type(urlsplit(url).path)
    media = (served or "").split(";", 1)[0].strip().lower()
    return media if claimed and media == claimed else OCTET_STREAM


__all__ = [
    "AssetInfo",
    "Origin",
    "check_asset_url",
    "resolve_asset_url",
    "shown",
    "stored_content_type",
]
