"""The strict JSON reader's fast path agrees with its strict path on hostile generated JSON.

``loads_strict`` first tries a fast path that only vouches for bodies a cheap test proves clean;
everything else goes through the strict path. These tests generate JSON text rich in what the
strict path refuses (duplicate keys, NaN/Infinity, deep nesting, lone surrogates, numbers beyond
a 64-bit float, brackets and escapes inside strings) and require the same outcome from both:
the same value (same types, same key order) or the same error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_qode.models import (
    MAX_JSON_DEPTH,
    StrictJSONError,
    _loads_checked,
    _loads_fast,
    _NotFast,
    loads_strict,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"

KEYS = st.sampled_from(['"a"', '"b"', '"score"', '"\\u0061"', '"x]"', '"{"'])
NUMBERS = st.one_of(
    st.integers().map(str),
    st.integers(min_value=300, max_value=320).map(lambda n: "9" * n),
    st.integers(min_value=300, max_value=320).map(lambda n: "-1" + "0" * n),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e308", "1.7976931348623157e308", "1.8e308", "-1e309", "1e-400", "-0"]),
    st.sampled_from(["1E400", "0.5e+309", "12e306"]),
)
CONSTANTS = st.sampled_from(["NaN", "Infinity", "-Infinity", "true", "false", "null"])
STRINGS = st.one_of(
    st.text(max_size=8).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(
        [
            '"\\ud800"',
            '"a\\udfff"',
            '"\\ud83d\\ude00"',
            '"\\uD83D"',
            '"]]]"',
            '"[[{{"',
            '"\\\\u0041"',
            '"\\\\ud800"',
            '"quote \\" ] inside"',
            '"\\n\\t"',
        ]
    ),
)
SCALARS = st.one_of(NUMBERS, CONSTANTS, STRINGS)


def _containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    arrays = st.lists(children, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")
    objects = st.lists(st.tuples(KEYS, children), max_size=4).map(
        lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    )
    return st.one_of(arrays, objects)


VALUES = st.recursive(SCALARS, _containers, max_leaves=20)


@st.composite
def _documents(draw: st.DrawFn) -> bytes:
    """A JSON-ish text, sometimes wrapped to just below or above the depth limit."""
    text = draw(VALUES)
    wraps = draw(st.one_of(st.just(0), st.integers(MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH + 2)))
    for _ in range(wraps):
        text = draw(st.sampled_from(["[{}]", '{{"k": {}}}', "[1, {}]"])).format(text)
    if draw(st.integers(0, 20)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # broken syntax now and then
    return text.encode("utf-8", "surrogatepass")


def _outcome(read: Any, raw: bytes) -> tuple[str, str]:
    try:
        return "value", repr(read(raw))
    except StrictJSONError as exc:
        return "error", str(exc)


def _checked(raw: bytes) -> Any:
    return _loads_checked(raw, raw.decode("utf-8"))


@settings(max_examples=400, deadline=None)
@given(_documents())
def test_loads_strict_agrees_with_the_strict_path(raw: bytes) -> None:
    assert _outcome(loads_strict, raw) == _outcome(_checked, raw)


@settings(max_examples=400, deadline=None)
@given(_documents())
def test_fast_path_only_accepts_what_the_strict_path_accepts_unchanged(raw: bytes) -> None:
    try:
        fast = _loads_fast(raw, raw.decode("utf-8"))
    except _NotFast:
        return
    assert repr(fast) == repr(_checked(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        # A key with whitespace before its colon is not counted: the fast path cannot vouch.
        b'{"a": 1, "a" :2}',
        b'{"a" : 1, "a": 2}',
        b'{"a":{"b": 1, "b"\n: 2}}',
        b'{"a": NaN}',
        b"[1e400]",
        b"[" + b"9" * 320 + b"]",
        b'["\\ud800"]',
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        # Brackets inside strings cannot hide depth from the fast path.
        b'["]"' + b", [" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b', "["]',
    ],
)
def test_fast_path_leaves_every_refusal_to_the_strict_path(raw: bytes) -> None:
    with pytest.raises(_NotFast):
        _loads_fast(raw, raw.decode("utf-8"))
    with pytest.raises(StrictJSONError):
        loads_strict(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": "x\\":y", "b": 1}',  # a '":' inside a string
        b'{"a" : 1}',  # whitespace before a colon
        b'[{"k": 1}, {"k": 2}, {"a": {"k": [1, {"k": 3}]}}]',
    ],
)
def test_what_the_fast_path_declines_the_strict_path_reads_the_same(raw: bytes) -> None:
    assert loads_strict(raw) == _checked(raw)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("valid_*.json")), ids=lambda p: p.name)
def test_fast_path_takes_ordinary_bodies(path: Path) -> None:
    raw = path.read_bytes()
    assert _loads_fast(raw, raw.decode("utf-8")) == _checked(raw)
