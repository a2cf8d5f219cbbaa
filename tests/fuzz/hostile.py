"""Hostile input for the fuzz suite: Hypothesis strategies for bytes, JSON and mutated
real messages, and the tally each property test adds its examples to.

A mutated message starts from a real one (a contract-shaped factory message, a simulator
event, a row of the recorded call stream) and has one to three of its fields deleted,
replaced with a hostile value (a wrong type, a huge string, NaN or infinity, a number
past 64 bits, a deep nesting, an odd timestamp, unusual unicode) or joined by a hostile
extra key, then is encoded one of several ways (orjson, the standard library with
``NaN`` allowed, raw number tokens spliced in) and sometimes cut short or flipped.
"""

from __future__ import annotations

import copy
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The fixed budget: every property test of tests/fuzz runs the same examples on every
# run (``derandomize``), so `make test` stays fast and a failure comes back the same.
SMALL, MEDIUM, LARGE = 25, 60, 150


def budget(max_examples: int) -> settings:
    """Hypothesis settings for a fuzz target: a fixed number of derandomized examples."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


# ---- the tally -------------------------------------------------------------------------

TALLY: defaultdict[str, Counter[str]] = defaultdict(Counter)
MEASURES: dict[str, Any] = {}  # memory figures of the long runs, for the report


def count(target: str, outcome: str) -> None:
    """One example of ``target`` ended with ``outcome`` (written to artifacts/fuzz.json)."""
    TALLY[target][outcome] += 1


# ---- raw tokens spliced into JSON text ---------------------------------------------------

# Numbers orjson cannot write: put a marker string in the object, then swap the quoted
# marker for the raw token in the encoded text.
RAW_TOKENS = {
    "@RAW:big@": "123456789012345678901234567890123",
    "@RAW:negbig@": "-99999999999999999999999999999",
    "@RAW:1e999@": "1e999",
    "@RAW:-1e999@": "-1e999",
    "@RAW:tiny@": "1e-999",
    "@RAW:NaN@": "NaN",
    "@RAW:Infinity@": "Infinity",
    "@RAW:negzero@": "-0.0",
    # Deep nesting as text (a Python object that deep would stop the encoders first).
    "@RAW:deep-list-200@": "[" * 200 + "1" + "]" * 200,
    "@RAW:deep-list-2000@": "[" * 2000 + "]" * 2000,
    "@RAW:deep-object-200@": '{"a":' * 200 + "{}" + "}" * 200,
    "@RAW:deep-object-1000@": '{"a":' * 1000 + "{}" + "}" * 1000,
}


ODD_TIMES = [
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59.999999+00:00",
    "9999-12-31T23:00:00-14:00",
    "9999-12-31T23:59:59Z",
    "2026-02-30T00:00:00Z",
    "2026-11-24T21:30:00",
    "2026-11-24",
    "21:30:00Z",
    "2026-11-24T21:30:00+25:00",
    "2026-11-24T21:30:00+23:59",
    "1970-01-01T00:00:00Z",
    "2026-W48-2T21:30:00Z",
    " 2026-11-24T21:30:00Z ",
    "2026-11-24T21:30:00.123456789Z",
    "+002026-11-24T21:30:00Z",
]

HOSTILE_SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**63 - 1,
    -(2**63),
    1.5,
    -0.0,
    1e308,
    -1e308,
    5e-324,
    91,
    -181,
    "",
    " ",
    "\u0000",
    "\t\n",
    "x" * 300,
    "x" * 20_000,
    "🚓" * 2000,
    "\u202e\u0301\ufeff",
    "A\u0000B",
    "null",
    "true",
    "0",
    "NaN",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "%s%n{0}${x}",
    "__proto__",
    *RAW_TOKENS,
    *ODD_TIMES,
    1764019800,
    1764019800000,
]

HOSTILE_KEYS = [
    "_fields_set",
    "__class__",
    "__dict__",
    "model_config",
    "model_fields",
    "reads",
    "enrichment",
    "type",
    "dead_lettered_reads",
    "",
    "\u0000",
    "x" * 1000,
]


@cache
def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value Python's types can say (orjson-writable)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda kids: (
            st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
        ),
        max_leaves=max_leaves,
    )


@cache
def hostile_values() -> st.SearchStrategy[Any]:
    """A value no field expects: a sampled nasty scalar, deep nesting, or any JSON."""
    return (
        st.sampled_from(HOSTILE_SCALARS)
        | st.sampled_from([[], {}, [None], {"": None}])
        | json_values(6)
    )


# ---- mutating a real message -------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node below the root (keys of objects, indices of lists)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):  # a batch's first reads are enough
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _containers(value: Any) -> list[tuple[Any, ...]]:
    """Paths to the objects in ``value`` (the root included)."""
    return [()] + [p for p in _paths(value) if isinstance(_at(value, p), dict)]


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


_KEYS = st.sampled_from(HOSTILE_KEYS) | st.text(max_size=10)
_STRINGS = st.sampled_from([v for v in HOSTILE_SCALARS if isinstance(v, str)]) | st.text()
_NUMBERS = st.sampled_from(
    [v for v in HOSTILE_SCALARS if isinstance(v, int | float) and not isinstance(v, bool)]
) | st.floats(allow_nan=False, allow_infinity=False)


def _same_type(value: Any) -> st.SearchStrategy[Any]:
    """A nasty value of the same JSON type as ``value`` (often still valid)."""
    if isinstance(value, str):
        return _STRINGS
    if isinstance(value, bool) or value is None:
        return st.sampled_from([None, True, False])
    if isinstance(value, int | float):
        return _NUMBERS
    return st.just(copy.deepcopy(value))


@st.composite
def mutated(
    draw: st.DrawFn, seeds: Sequence[dict[str, Any]], gentle: bool = False
) -> dict[str, Any]:
    """A copy of one of ``seeds`` with one to three hostile changes (``gentle``: values
    of the same type and extra keys only, so that most stay valid and go deeper)."""
    message = copy.deepcopy(draw(st.sampled_from(list(seeds))))
    ops = (
        ["same_type", "add"]
        if gentle
        else ["same_type"] * 3 + ["replace"] * 2 + ["delete", "add", "wrap"]
    )
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        op = draw(st.sampled_from(ops))
        if op == "add":
            where = _at(message, draw(st.sampled_from(_containers(message))))
            key = draw(_KEYS)
            where[key] = copy.deepcopy(draw(hostile_values()))
            continue
        paths = _paths(message)
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        parent, last = _at(message, path[:-1]), path[-1]
        if op == "delete":
            del parent[last]
        elif op == "same_type":
            parent[last] = draw(_same_type(parent[last]))
        elif op == "wrap":
            parent[last] = draw(st.sampled_from([[parent[last]], {"value": parent[last]}]))
        else:
            parent[last] = copy.deepcopy(draw(hostile_values()))
    return message


def encode(value: Any, how: str) -> bytes:
    """``value`` as JSON bytes: ``orjson``, ``stdlib`` (NaN allowed, any int) or
    ``latin1`` (the text as Latin-1: not UTF-8 when it is not ASCII); raw tokens spliced."""
    if how == "orjson":
        try:
            text = orjson.dumps(value).decode()
        except (TypeError, orjson.JSONEncodeError):  # past orjson: the standard library
            text = json.dumps(value)
    else:
        text = json.dumps(value, ensure_ascii=how != "latin1")
    for marker, token in RAW_TOKENS.items():
        text = text.replace(f'"{marker}"', token)
    if how == "latin1":
        return text.encode("latin-1", errors="replace")
    return text.encode("utf-8", errors="surrogatepass")


@st.composite
def wire(draw: st.DrawFn, value_strategy: st.SearchStrategy[Any]) -> bytes:
    """A value from ``value_strategy`` on the wire, sometimes damaged."""
    value = draw(value_strategy)
    raw = encode(value, draw(st.sampled_from(["orjson", "orjson", "stdlib", "latin1"])))
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "flip", "prefix"]))
    if damage == "truncate" and raw:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif damage == "flip" and raw:
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1 :]
    elif damage == "prefix":
        raw = draw(st.sampled_from([b"\xef\xbb\xbf", b"\x00", b" ", b"\xff"])) + raw
    return raw


@st.composite
def hostile_wire(draw: st.DrawFn, seeds: Sequence[dict[str, Any]]) -> tuple[str, bytes]:
    """(family, bytes): generated bytes (one in ten), generated JSON (two in ten), or a
    mutated real message."""
    family = draw(st.sampled_from(["bytes"] + ["json"] * 2 + ["mutated"] * 5 + ["gentle"] * 2))
    if family == "bytes":
        return family, draw(st.binary(max_size=300))
    if family == "json":
        return family, draw(wire(json_values()))
    if family == "gentle":
        return family, encode(draw(mutated(seeds, gentle=True)), "orjson")
    return family, draw(wire(mutated(seeds)))
