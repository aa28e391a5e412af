"""Asset references are untrusted input: resolve them to a URL we are willing to fetch, or refuse.

A payload names an asset by an absolute URL or by a path relative to the asset base URL. We fetch
only https (http for loopback, which is how tests run), only from allowed hosts, never with
credentials in the URL, and never a path that climbs out of the base.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, urlsplit

from airflow_provider_qode.exceptions import QodeAssetError
from airflow_provider_qode.hooks.connection import is_loopback

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_REFERENCE_LENGTH = 2048


@dataclass(frozen=True)
class AssetInfo:
    """What was streamed: enough for a manifest without holding the bytes."""

    url: str
    size: int
    sha256: str
    content_type: str | None


def check_asset_url(url: str, allowed_hosts: frozenset[str]) -> str:
    """Return ``url`` if it may be fetched, else raise :class:`QodeAssetError` saying why."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http"):
        raise QodeAssetError(f"asset URL {url!r}: scheme {parts.scheme!r} is not allowed")
    if parts.scheme == "http" and not is_loopback(host):
        raise QodeAssetError(f"asset URL {url!r}: plain http is only allowed for loopback hosts")
    if parts.username or parts.password:
        raise QodeAssetError(f"asset URL {url!r}: credentials in the URL are not allowed")
    if host not in allowed_hosts:
        raise QodeAssetError(
            f"asset URL {url!r}: host {host!r} is not in the allowed asset hosts "
            f"{sorted(allowed_hosts)}"
        )
    return url


def resolve_asset_url(reference: str, asset_base_url: str, allowed_hosts: frozenset[str]) -> str:
    """Turn a payload's asset reference into a checked absolute URL."""
    if not isinstance(reference, str) or not reference.strip():
        raise QodeAssetError("asset reference is empty")
    if len(reference) > MAX_REFERENCE_LENGTH or _CONTROL.search(reference):
        raise QodeAssetError("asset reference is too long or contains control characters")
    if "\\" in reference:
        raise QodeAssetError(f"asset reference {reference!r} contains a backslash")
    if "://" in reference or reference.startswith("//"):
        return check_asset_url(reference, allowed_hosts)
    raw_path, _, query = reference.split("#", 1)[0].partition("?")
    path = PurePosixPath(unquote(raw_path))
    if path.is_absolute() or ".." in path.parts:
        raise QodeAssetError(f"asset path {reference!r} leaves the asset base URL")
    url = f"{asset_base_url.rstrip('/')}/{quote(str(path), safe='/')}"
    if query:  # signed asset URLs carry their signature in the query
        url += "?" + query
    return check_asset_url(url, allowed_hosts)
