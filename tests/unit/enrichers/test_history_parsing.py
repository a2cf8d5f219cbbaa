"""The pure parts of the history store: what Redis replies mean."""

from datetime import timedelta

import orjson

from enrichers.history import _call_history_ids, _decode_entries, _hotlist_hits, _live
from rtic.schemas import PlateReadV1
from tests.conftest import NOW, make_read


def _field(*entries: dict) -> bytes:
    return orjson.dumps({e["id"]: orjson.dumps(e).decode() for e in entries})


def test_hotlist_hits_mark_exact_and_misread_and_drop_expired() -> None:
    read = PlateReadV1.model_validate(make_read(vrm="AB12 CDE"))
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


def test_bad_stored_json_is_skipped_not_fatal() -> None:
    assert _decode_entries(b"not json") == []
    assert _decode_entries(orjson.dumps({"a": "{broken"})) == []


def test_call_history_counts_and_lists_most_recent_first() -> None:
    block = _call_history_ids([b"C1", "C2", b"C3"])
    assert block == {"count": 3, "recent": ["C3", "C2", "C1"]}
    assert _call_history_ids([]) == {"count": 0, "recent": []}


def test_live_respects_expiry() -> None:
    assert _live({}, NOW)
    assert _live({"expires_at": (NOW + timedelta(hours=1)).isoformat()}, NOW)
    assert not _live({"expires_at": NOW.isoformat()}, NOW)


def test_nearby_counts_by_category_within_the_window_and_not_itself() -> None:
    from enrichers.history import _nearby

    ts = int(NOW.timestamp())
    raw = [
        f"C1|assault|{ts - 3600}".encode(),
        f"C2|assault|{ts - 86400}".encode(),
        f"C3|burglary|{ts - 40 * 86400}".encode(),  # outside 28 days
        f"SELF|asb|{ts}".encode(),
        b"garbage",
        f"C1|assault|{ts - 3600}".encode(),  # the same call from another week's set
    ]
    block = _nearby(raw, "SELF", NOW, 28 * 86400)
    assert block["count"] == 2 and block["by_category"] == {"assault": 2}
    assert [r["id"] for r in block["recent"]] == ["C1", "C2"]


def test_weeks_are_iso_weeks() -> None:
    from enrichers.history import _week

    assert _week(NOW.timestamp()) == "2026-W48"
