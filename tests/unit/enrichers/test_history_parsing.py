"""The pure parts of the history store: what Redis replies mean."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from enrichers.history import (
    TRAIL_SHOWN,
    _as_list,
    _decode_entries,
    _hotlist_hits,
    _live,
    _trail,
)
from enrichers.reference import json_hash as _json_hash
from rtic.schemas import PlateReadV1
from tests.conftest import NOW, make_read


def _field(*entries: dict[str, Any]) -> bytes:
    """One hotlist or marker field as the Lua scripts write it: {id: entry JSON}."""
    return orjson.dumps({e["id"]: orjson.dumps(e).decode() for e in entries})


def _read(**overrides: Any) -> PlateReadV1:
    return PlateReadV1.model_validate(make_read(**overrides))


# ---- hotlist hits -----------------------------------------------------------------------


def test_hotlist_hits_mark_exact_and_misread_and_drop_expired() -> None:
    read = _read(vrm="AB12 CDE")
    raw = _field(
        {"id": "1", "vrm": "A812CDE", "reason": "stolen"},
        {"id": "2", "vrm": "AB12CDE", "reason": "firearms"},
        {
            "id": "3",
            "vrm": "AB12CDE",
            "reason": "other",
            "expires_at": (NOW - timedelta(seconds=1)).isoformat(),
        },
    )
    hits = _hotlist_hits(read, raw)
    assert [(h["id"], h["match"]) for h in hits] == [("2", "exact"), ("1", "misread")]
    assert _hotlist_hits(read, None) == []


def test_hotlist_hits_keep_the_entry_and_order_exact_first_then_by_id() -> None:
    read = _read(vrm="AB12CDE")
    raw = _field(
        {"id": "b", "vrm": "A812CDE", "reason": "stolen", "source": "PNC"},
        {"id": "c", "vrm": "ab12 cde", "reason": "other"},
        {"id": "a", "vrm": "AB1ZCDE", "reason": "firearms"},
    )
    hits = _hotlist_hits(read, raw)
    assert [(h["id"], h["match"]) for h in hits] == [
        ("c", "exact"),
        ("a", "misread"),
        ("b", "misread"),
    ]
    assert hits[2]["source"] == "PNC" and hits[2]["reason"] == "stolen"


def test_expiry_is_judged_at_the_read_time_not_the_wall_clock() -> None:
    # A read replayed later still matches an entry that was live when it was read.
    read = _read(read_at=(NOW - timedelta(days=2)).isoformat())
    raw = _field(
        {
            "id": "1",
            "vrm": "AB12CDE",
            "reason": "stolen",
            "expires_at": (NOW - timedelta(days=1)).isoformat(),
        }
    )
    assert [h["id"] for h in _hotlist_hits(read, raw)] == ["1"]
    assert _hotlist_hits(_read(), raw) == []


def test_hotlist_field_may_be_text_or_bytes() -> None:
    raw = _field({"id": "1", "vrm": "AB12CDE", "reason": "stolen"})
    assert _hotlist_hits(_read(), raw.decode()) == _hotlist_hits(_read(), raw)


# ---- stored entries that are not what they should be -------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"not json",
        orjson.dumps({"a": "{broken"}),
        b"[]",
        b"[1, 2]",
        b"null",
        b"7",
        orjson.dumps({"a": "1"}),
        orjson.dumps({"a": "[1]"}),
        orjson.dumps({"a": 5}),
    ],
)
def test_bad_stored_json_is_skipped_not_fatal(raw: bytes | None) -> None:
    assert _decode_entries(raw) == []
    assert _hotlist_hits(_read(), raw) == []


def test_good_entries_survive_a_bad_neighbour() -> None:
    raw = orjson.dumps({"bad": "{broken", "num": "3", "good": orjson.dumps({"id": "g"}).decode()})
    assert _decode_entries(raw) == [{"id": "g"}]
    assert _decode_entries(orjson.dumps({"inline": {"id": "i"}})) == [{"id": "i"}]


# ---- expiry -----------------------------------------------------------------------------


def test_live_respects_expiry() -> None:
    assert _live({}, NOW)
    assert _live({"expires_at": None}, NOW)
    assert _live({"expires_at": (NOW + timedelta(hours=1)).isoformat()}, NOW)
    assert not _live({"expires_at": NOW.isoformat()}, NOW)
    assert not _live({"expires_at": "2026-11-24T21:29:59Z"}, NOW)


@pytest.mark.parametrize("expires_at", ["soon", 12345, "2020-01-01T00:00:00"])
def test_an_unreadable_expiry_keeps_the_entry_live(expires_at: Any) -> None:
    # Entries are validated (timezone-aware) on the way in; if a stored one is odd,
    # an officer is better warned than not.
    assert _live({"expires_at": expires_at}, NOW)


# ---- call history -----------------------------------------------------------------------


def test_lua_empty_arrays_read_as_lists() -> None:
    assert _as_list({}) == [] and _as_list(None) == [] and _as_list([1]) == [1]


# ---- ANPR trail ------------------------------------------------------------------------


def test_trail_leaves_out_this_read_redeliveries_and_bad_items_and_is_short() -> None:
    reads = [{"read_id": "THIS"}] + [{"read_id": f"R{i}"} for i in range(10)]
    raw = [orjson.dumps(r) for r in reads]
    raw.insert(2, b"{broken")
    raw.insert(3, orjson.dumps({"read_id": "R0"}))  # the same earlier read twice
    trail = _trail(raw, "THIS")
    assert [r["read_id"] for r in trail] == [f"R{i}" for i in range(TRAIL_SHOWN)]
    assert _trail(None, "THIS") == [] and _trail([], "THIS") == []


# ---- JSON hashes (live reference layers, officer states) --------------------------------


def test_json_hash_decodes_keys_and_skips_values_that_are_not_json() -> None:
    raw = {b"O1": b'{"lat": 52.4}', "O2": b"{broken", b"O3": b'{"lat": 52.5}'}
    assert _json_hash(raw) == {"O1": {"lat": 52.4}, "O3": {"lat": 52.5}}
    assert _json_hash(None) == {} and _json_hash({}) == {}


def test_json_hash_skips_values_that_are_json_but_not_objects() -> None:
    assert _json_hash({b"O1": b"1", b"O2": b"[]", b"O3": b'{"lat": 1}'}) == {"O3": {"lat": 1}}
