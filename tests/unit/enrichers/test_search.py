"""History search, the pure part: what stored hotlist fields, trails and log entries mean.
The Redis side is tested against a real Redis (tests/integration/test_gateway_records.py)."""

from __future__ import annotations

from datetime import timedelta

import orjson

from enrichers.search import hotlist_matches, live_entries, records_matching, trail_reads
from tests.conftest import NOW

MS = int(NOW.timestamp() * 1000)


def test_live_hotlist_entries_marked_exact_or_misread() -> None:
    field = orjson.dumps(
        {
            "h2": orjson.dumps({"id": "h2", "vrm": "8D51SMR", "reason": "firearms"}).decode(),
            "h1": {"id": "h1", "vrm": "BD51 SMR", "reason": "stolen"},
            "old": {
                "id": "old",
                "vrm": "BD51SMR",
                "expires_at": (NOW - timedelta(days=1)).isoformat(),
            },
        }
    )
    hits = hotlist_matches(field, "bd51smr", NOW)
    assert [(h["id"], h["match"]) for h in hits] == [("h1", "exact"), ("h2", "misread")]
    assert hotlist_matches(None, "BD51SMR", NOW) == []
    assert hotlist_matches(b"not json", "BD51SMR", NOW) == []
    assert live_entries(b"[1, 2]", NOW) == []


def test_a_trail_is_decoded_newest_first_without_repeats_or_rubbish() -> None:
    reads = [
        orjson.dumps({"read_id": "r3", "camera_id": "C1"}),
        b"{broken",
        orjson.dumps({"read_id": "r3", "camera_id": "C1"}),  # a redelivered read
        orjson.dumps([1]),
        orjson.dumps({"read_id": "r1", "camera_id": "C2"}),
    ]
    assert [r["read_id"] for r in trail_reads(reads)] == ["r3", "r1"]


def _entry(rows: list[list[object]]) -> tuple[bytes, dict[bytes, bytes]]:
    return (b"1-0", {b"c": orjson.dumps(rows)})


def test_log_records_by_person_or_address_newest_first() -> None:
    entries = [
        _entry(
            [
                ["CALL-1", MS, "12 EXAMPLE STREET", "P-1", 52.48, -1.89, "burglary"],
                ["CALL-2", MS + 60_000, "", "P-1", 52.48, -1.89, "concern"],
                ["CALL-3", MS, "12 EXAMPLE STREET", "P-2", 52.48, -1.89, "noise"],
                ["bad row"],
            ]
        ),
        (b"0-1", {"c": b"{broken"}),
        (b"0-2", {b"other": b"[]"}),
    ]
    by_person = records_matching(entries, lambda _, person: person == "P-1")
    assert [c["id"] for c in by_person] == ["CALL-2", "CALL-1"]
    assert by_person[1] == {
        "id": "CALL-1",
        "at": NOW.isoformat(),
        "category": "burglary",
        "lat": 52.48,
        "lon": -1.89,
        "address_key": "12 EXAMPLE STREET",
    }
    assert "address_key" not in by_person[0]
    at_address = records_matching(entries, lambda address, _: address == "12 EXAMPLE STREET")
    assert {c["id"] for c in at_address} == {"CALL-1", "CALL-3"}
