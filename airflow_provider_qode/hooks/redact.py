"""Scrub secrets out of error texts before anything logs or stores them.

Some gateways echo the request (token, ``Authorization`` header) in their error pages, and a
signed asset URL carries its signature in the query string. Error texts end up in exceptions,
the manifest's ``failed`` map, quarantine reasons and the quality report, so they are cleaned
where the hook creates them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

REDACTED = "***"

#: ``Authorization: <value>`` in headers, JSON or repr'd dicts: the whole value goes.
_AUTHORIZATION = re.compile(r"""(?i)(authorization["']?\s*[:=]\s*["']?)[^"'\r\n,;}\]]+""")
#: ``Bearer <credential>`` anywhere in a text.
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/=]+")
#: The query of an absolute URL (a signature, an expiry, sometimes a token).
_URL_QUERY = re.compile(r"""(?i)\b([a-z][a-z0-9+.\-]*://[^\s?#"'<>]*)\?[^\s#"'<>]*""")


def strip_query(url: str) -> str:
    """``url`` without its query string and fragment: what may be shown of a signed URL."""
    for mark in ("?", "#"):
        url = url.split(mark, 1)[0]
    return url


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with each secret, any ``Authorization`` or bearer value and URL queries blanked."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _URL_QUERY.sub(lambda m: m.group(1) + "?" + REDACTED, text)


@dataclass(frozen=True)
class Redactor:
    """Knows the connection's token in every spelling an echo may use (raw, URL- and JSON-
    escaped) and removes it from texts and bodies."""

    token: str = field(default="", repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        if not self.token:
            return ()
        spellings = {self.token, quote(self.token, safe=""), json.dumps(self.token)[1:-1]}
        return tuple(sorted(spellings, key=len, reverse=True))

    def text(self, text: str) -> str:
        return redact_text(text, self.secrets)

    def body(self, body: bytes) -> bytes:
        """An error body with the token's bytes replaced (the rest is kept as received)."""
        for secret in self.secrets:
            body = body.replace(secret.encode(), REDACTED.encode())
        return body


__all__ = ["REDACTED", "Redactor", "redact_text", "strip_query"]
