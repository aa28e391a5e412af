"""Response bodies read within a byte budget counted *after* decoding.

httpx inflates gzip before the caller sees a byte, so a 40 KB answer can become gigabytes in
one piece. Here the raw bytes are inflated in pieces of at most :data:`PIECE_BYTES`, and reading
stops as soon as the budget is spent: memory per response is bounded by the budget, whatever
the server sends.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator

#: What we ask for; any other ``Content-Encoding`` is refused rather than trusted.
ACCEPT_ENCODING = "gzip, deflate"
#: The largest piece inflated at once.
PIECE_BYTES = 1024 * 1024


class BodyDecodingError(ValueError):
    """The body's ``Content-Encoding`` is unsupported, or its compressed stream is corrupt."""


class BodyDecoder:
    """Inflates one response's raw bytes (identity, gzip or deflate) in bounded pieces."""

    def __init__(self, content_encoding: str | None) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise BodyDecodingError(f"unsupported Content-Encoding {content_encoding!r}")
        self._coding = codings[0] if codings else ""
        self._zlib = self._inflater()
        self._started = False
        #: Set once the stream proved corrupt: nothing more is decoded.
        self.failed = False

    def _inflater(self, raw_deflate: bool = False) -> zlib._Decompress | None:
        if not self._coding:
            return None
        if self._coding == "deflate":  # zlib-wrapped as specified, or raw as some servers send
            return zlib.decompressobj(-zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS)
        return zlib.decompressobj(zlib.MAX_WBITS | 16)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next raw chunk, none longer than :data:`PIECE_BYTES`."""
        inflater = self._zlib
        if inflater is None:
            if len(data) <= PIECE_BYTES:
                yield data
            else:
                for start in range(0, len(data), PIECE_BYTES):
                    yield data[start : start + PIECE_BYTES]
            return
        first, self._started = not self._started, True
        while True:
            try:
                piece = inflater.decompress(data, PIECE_BYTES)
            except zlib.error as exc:
                if first and self._coding == "deflate":
                    inflater = self._zlib = self._inflater(raw_deflate=True)
                    assert inflater is not None
                    first = False
                    continue
                self.failed = True
                raise BodyDecodingError(f"corrupt {self._coding} body: {exc}") from None
            first = False
            if piece:
                yield piece
            data = inflater.unconsumed_tail
            if inflater.eof and inflater.unused_data and self._coding != "deflate":
                data = inflater.unused_data  # the next member of a multi-member gzip
                inflater = self._zlib = self._inflater()
                assert inflater is not None
            elif inflater.eof:
                return
            if not data and len(piece) < PIECE_BYTES:
                return


class CappedBuffer:
    """Collects decoded pieces up to ``limit`` bytes; :attr:`over` once more was offered.

    Passing the limit drops all but the first ``keep`` bytes at once, so a body that turned out
    too big never outlives the read that found out.
    """

    def __init__(self, limit: int, keep: int | None = None) -> None:
        self.limit = limit
        self.keep = limit if keep is None else min(keep, limit)
        self.size = 0
        self.over = False
        self._buffer = io.BytesIO()

    def add(self, piece: bytes) -> bool:
        """Keep ``piece``; False once the limit is passed: stop reading."""
        if self.over:
            return False
        if len(piece) > self.limit - self.size:
            self._buffer.seek(0)
            head = self._buffer.read(self.keep)
            head += piece[: self.keep - len(head)]
            self._buffer = io.BytesIO(head)
            self.size, self.over = len(head), True
            return False
        self._buffer.write(piece)
        self.size += len(piece)
        return True

    def value(self) -> bytes:
        """The bytes kept (the buffer is released)."""
        head = self._buffer.getvalue()  # shares the buffer's bytes, no copy
        self._buffer = io.BytesIO()
        return head


__all__ = ["ACCEPT_ENCODING", "PIECE_BYTES", "BodyDecoder", "BodyDecodingError", "CappedBuffer"]
