"""Redaction of error texts and bounded decoding: pure functions, checked on exact strings."""

from __future__ import annotations

import gzip
import json
import zlib
from urllib.parse import quote

import pytest

from airflow_provider_qode.hooks.body import PIECE_BYTES, BodyDecoder, BodyDecodingError
from airflow_provider_qode.hooks.redact import Redactor, redact_text, strip_query

TOKEN = 'tok/en+with=odd"chars'


@pytest.mark.parametrize(
    "spelling", [TOKEN, quote(TOKEN, safe=""), json.dumps(TOKEN)[1:-1]], ids=["raw", "url", "json"]
)
def test_every_spelling_of_the_token_is_redacted(spelling):
    text = Redactor(TOKEN).text(f"upstream said: {spelling} is not valid")
    assert text == "upstream said: *** is not valid"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def", "Authorization: ***"),
        ('{"authorization": "Basic dXNlcjpwdw=="}', '{"authorization": "***"}'),
        ("{'Authorization': 'Token x'}", "{'Authorization': '***'}"),
        ("sent bearer eyJhbGciOi.x.y today", "sent bearer *** today"),
        ("see https://cdn.x/a.png?X-Sig=1&e=2 now", "see https://cdn.x/a.png?*** now"),
        ("no secrets here", "no secrets here"),
    ],
)
def test_authorization_values_bearer_credentials_and_url_queries(text, expected):
    assert redact_text(text) == expected


def test_error_bodies_lose_the_token_bytes_only():
    body = f'{{"errors": "bad {TOKEN}"}}'.encode()
    assert Redactor(TOKEN).body(body) == b'{"errors": "bad ***"}'
    assert Redactor("").body(body) == body


def test_strip_query_drops_query_and_fragment():
    assert strip_query("https://h/a.png?sig=1#frag") == "https://h/a.png"
    assert strip_query("assets/a.png#x?y") == "assets/a.png"


def _decode(encoding: str | None, raw: bytes, step: int = 7) -> list[bytes]:
    decoder = BodyDecoder(encoding)
    return [p for i in range(0, len(raw), step) for p in decoder.feed(raw[i : i + step])]


def test_gzip_is_inflated_in_bounded_pieces_whatever_the_ratio():
    pieces = _decode("gzip", gzip.compress(b"\0" * (3 * PIECE_BYTES + 5)), step=1 << 16)
    assert max(map(len, pieces)) == PIECE_BYTES
    assert sum(map(len, pieces)) == 3 * PIECE_BYTES + 5


def test_multi_member_gzip_and_both_deflate_flavours():
    assert b"".join(_decode("gzip", gzip.compress(b"ab") + gzip.compress(b"cd"))) == b"abcd"
    assert b"".join(_decode("deflate", zlib.compress(b"zlib-wrapped"))) == b"zlib-wrapped"
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    data = raw.compress(b"raw deflate") + raw.flush()
    assert b"".join(_decode("deflate", data, step=len(data))) == b"raw deflate"
    assert b"".join(_decode("identity", b"plain")) == b"plain"


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
def test_unrequested_encodings_are_refused(encoding):
    with pytest.raises(BodyDecodingError, match="unsupported Content-Encoding"):
        BodyDecoder(encoding)
