"""The event index (calls, incidents) against a brute-force reading of its documented semantics."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from enrichers.event_index import EMERGING_SHOWN, EventIndex, EventRecord, iso_seconds
from rtic.geodesy import within

WINDOW_S = 3_600
RADIUS = 50
SHOWN = 3
T0 = 1_764_000_000_000
EMERGING = (300.0, 600.0)


def oracle(state: dict[str, EventRecord], rec: EventRecord, emerging: Any) -> dict[str, Any]:
    """The block of ``rec`` computed by looking at every indexed call."""
    lo, hi = rec.ms - WINDOW_S * 1000, rec.ms
    calls = list(state.values())

    def listing(found: list[EventRecord], newest_first: bool, limit: int) -> list[dict[str, Any]]:
        found = sorted(found, key=lambda r: (r.ms, r.id), reverse=newest_first)
        return [{"id": r.id, "category": r.category, "at": iso_seconds(r.ms)} for r in found][
            :limit
        ]

    block: dict[str, Any] = {}
    for name, attr in (("calls_at_address", "address"), ("calls_by_person", "person")):
        if getattr(rec, attr):
            same = [r for r in calls if getattr(r, attr) == getattr(rec, attr) and lo <= r.ms <= hi]
            same.sort(key=lambda r: (r.ms, r.id), reverse=True)
            block[name] = {"count": len(same), "recent": [r.id for r in same[:SHOWN]]}
    near = [
        r
        for r in calls
        if r.id != rec.id and lo <= r.ms <= hi and within(rec.lat, rec.lon, r.lat, r.lon, RADIUS)
    ]
    by_category: dict[str, int] = {}
    for r in near:
        by_category[r.category] = by_category.get(r.category, 0) + 1
    block["nearby"] = {
        "radius_m": RADIUS,
        "count": len(near),
        "by_category": by_category,
        "recent": listing(near, True, SHOWN),
    }
    if emerging:
        er, ew = emerging
        close = [
            r
            for r in calls
            if r.id != rec.id
            and rec.ms - ew * 1000 <= r.ms <= hi
            and within(rec.lat, rec.lon, r.lat, r.lon, er)
        ]
        block["recent_calls_nearby"] = {
            "radius_m": er,
            "window_minutes": ew / 60,
            "count": len(close),
            "sources": sources([*close, rec]) if close else 1,
            "calls": listing(close, False, EMERGING_SHOWN),
        }
    return block


def sources(recs: list[Any]) -> int:
    """Distinct callers or addresses, the slow way: merge groups until none share one."""
    groups = [
        {
            k
            for k in (f"a:{r.address}" if r.address else "", f"p:{r.person}" if r.person else "")
            if k
        }
        or {f"id:{i}"}
        for i, r in enumerate(recs)
    ]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if groups[i] & groups[j]:
                    groups[i] |= groups.pop(j)
                    merged = True
                    break
            if merged:
                break
    return len(groups)


# Calls bunched in a few hundred metres, so that radius searches find some and miss
# some; few addresses and callers; times over two windows, in any order; repeats.
_calls = st.lists(
    st.tuples(
        st.integers(0, 12),  # id
        st.integers(-WINDOW_S * 1000, WINDOW_S * 1000),  # time offset
        st.sampled_from(["", "1 HIGH ST", "2 HIGH ST"]),
        st.sampled_from(["", "P1", "P2"]),
        st.floats(-0.004, 0.004),  # lat offset (about 450 m)
        st.floats(-0.006, 0.006),  # lon offset
        st.sampled_from(["assault", "theft"]),
    ),
    min_size=1,
    max_size=40,
)


def _records(rows: list[tuple[Any, ...]], base_lat: float) -> list[EventRecord]:
    return [
        EventRecord(f"C{i}", T0 + dt, a, p, base_lat + dlat, -1.9 + dlon, cat, logged_ms=1)
        for i, dt, a, p, dlat, dlon, cat in rows
    ]


@settings(max_examples=150, deadline=None)
@given(
    _calls,
    st.lists(st.integers(1, 7), min_size=1, max_size=10),
    st.booleans(),
    st.sampled_from([52.48, 75.2, -33.9]),
)
def test_batches_answer_as_a_brute_force_reading(
    rows: list[tuple[Any, ...]], sizes: list[int], with_emerging: bool, base_lat: float
) -> None:
    emerging = EMERGING if with_emerging else None
    index = EventIndex(WINDOW_S, RADIUS, SHOWN)
    state: dict[str, EventRecord] = {}
    recs = _records(rows, base_lat)
    pos, k = 0, 0
    while pos < len(recs):
        batch = recs[pos : pos + sizes[k % len(sizes)]]
        pos, k = pos + len(batch), k + 1
        blocks = index.add_and_ask(batch, emerging)
        for rec, block in zip(batch, blocks, strict=True):
            state[rec.id] = rec
            assert block == oracle(state, rec, emerging)
    assert set(index.records) == set(state)


@settings(max_examples=60, deadline=None)
@given(_calls, st.booleans())
def test_calls_indexed_from_the_log_answer_as_if_asked(
    rows: list[tuple[Any, ...]], with_emerging: bool
) -> None:
    """Other workers' calls (``add``) and this worker's (``add_and_ask``) end in the same
    index: a call asked after either way gets the same block."""
    emerging = EMERGING if with_emerging else None
    asked, logged = EventIndex(WINDOW_S, RADIUS, SHOWN), EventIndex(WINDOW_S, RADIUS, SHOWN)
    recs = _records(rows, 52.48)
    asked.add_and_ask(recs, emerging)
    logged.add(_records(rows, 52.48))
    assert set(asked.records) == set(logged.records)
    probe = EventRecord("Q", T0, "1 HIGH ST", "P1", 52.48, -1.9, "x", 1)
    (a,) = asked.add_and_ask([probe], emerging)
    (b,) = logged.add_and_ask([EventRecord(*probe.fields(), logged_ms=1)], emerging)
    assert a == b


def ask_oracle(state: dict[str, EventRecord], rec: EventRecord) -> dict[str, Any]:
    """What ``ask`` answers for ``rec``, from every indexed record (its own id left out)."""
    lo, hi = rec.ms - WINDOW_S * 1000, rec.ms
    others = [r for r in state.values() if r.id != rec.id and lo <= r.ms <= hi]
    near = [r for r in others if within(rec.lat, rec.lon, r.lat, r.lon, RADIUS)]
    near.sort(key=lambda r: (r.ms, r.id), reverse=True)
    by_category: dict[str, int] = {}
    for r in near:
        by_category[r.category] = by_category.get(r.category, 0) + 1
    recent = [{"id": r.id, "category": r.category, "at": iso_seconds(r.ms)} for r in near]
    out: dict[str, Any] = {
        "nearby": {
            "radius_m": RADIUS,
            "count": len(near),
            "by_category": by_category,
            "recent": recent[:SHOWN],
        }
    }
    if rec.address:
        same = sorted(
            (r for r in others if r.address == rec.address),
            key=lambda r: (r.ms, r.id),
            reverse=True,
        )
        out["at_address"] = {"count": len(same), "recent": [r.id for r in same[:SHOWN]]}
    return out


@settings(max_examples=150, deadline=None)
@given(_calls, _calls, st.sampled_from([52.48, 75.2, -33.9]))
def test_asking_answers_as_a_brute_force_reading_and_indexes_nothing(
    rows: list[tuple[Any, ...]], probes: list[tuple[Any, ...]], base_lat: float
) -> None:
    """Another kind's events (or an indexed record's later events, by its id) asking
    the index: records in the window, at the address and within the radius, their own
    id left out."""
    index = EventIndex(WINDOW_S, RADIUS, SHOWN)
    state: dict[str, EventRecord] = {}
    for rec in _records(rows, base_lat):  # corrections included: the last one stands
        index.add([rec])
        state[rec.id] = rec
    asked = _records(probes, base_lat)
    blocks = index.ask(asked)
    assert blocks == [ask_oracle(state, rec) for rec in asked]
    assert set(index.records) == set(state) and len(index) == len(state)
    assert index.ask([]) == []


def test_a_redelivered_call_counts_once_and_a_corrected_one_moves() -> None:
    index = EventIndex(WINDOW_S, RADIUS, SHOWN)
    first = EventRecord("C1", T0, "1 HIGH ST", "P1", 52.48, -1.9, "assault", 1)
    index.add_and_ask([first])
    (again,) = index.add_and_ask([EventRecord(*first.fields(), logged_ms=2)])
    assert again["calls_at_address"] == {"count": 1, "recent": ["C1"]}
    moved = EventRecord("C1", T0, "2 HIGH ST", "P1", 52.48, -1.9, "assault", 3)
    (block,) = index.add_and_ask([moved])
    assert block["calls_at_address"] == {"count": 1, "recent": ["C1"]}
    (other,) = index.add_and_ask([EventRecord("C2", T0 + 1, "1 HIGH ST", "", 52.6, -1.9, "x", 4)])
    assert other["calls_at_address"] == {"count": 1, "recent": ["C2"]}


def test_calls_are_forgotten_when_the_log_lets_them_go() -> None:
    index = EventIndex(WINDOW_S, RADIUS, SHOWN)
    index.add_and_ask([EventRecord("C1", T0, "1 HIGH ST", "", 52.48, -1.9, "assault", 100)])
    index.add_and_ask([EventRecord("C2", T0, "1 HIGH ST", "", 52.48, -1.9, "assault", 200)])
    # C1 delivered again later: it stays as long as its latest logging.
    index.add_and_ask([EventRecord("C1", T0, "1 HIGH ST", "", 52.48, -1.9, "assault", 300)])
    assert index.forget_logged_before(250) == 1
    assert set(index.records) == {"C1"}
    (block,) = index.add_and_ask([EventRecord("C3", T0, "1 HIGH ST", "", 52.48, -1.9, "x", 400)])
    assert block["calls_at_address"]["count"] == 2
    assert block["nearby"]["count"] == 1
    assert index.forget_logged_before(10**15) == 2 and len(index) == 0


def test_an_emerging_search_of_another_radius_rebuilds_its_grid() -> None:
    index = EventIndex(WINDOW_S, RADIUS, SHOWN)
    a = EventRecord("C1", T0, "", "", 52.48, -1.9, "assault", 1)
    index.add_and_ask([a], (300.0, 600.0))
    b = EventRecord("C2", T0 + 1000, "", "", 52.4836, -1.9, "assault", 1)  # about 400 m north
    (small,) = index.add_and_ask([b], (300.0, 600.0))
    c = EventRecord("C3", T0 + 2000, "", "", 52.4836, -1.9, "assault", 1)
    (large,) = index.add_and_ask([c], (1000.0, 600.0))
    assert small["recent_calls_nearby"]["count"] == 0
    assert [x["id"] for x in large["recent_calls_nearby"]["calls"]] == ["C1", "C2"]


def test_iso_seconds_is_utc_to_the_second() -> None:
    assert iso_seconds(T0 + 999) == "2025-11-24T16:00:00+00:00"
    assert math.isclose(T0 / 1000, 1_764_000_000)


@settings(max_examples=300, deadline=None)
@given(st.integers(-2_000_000_000_000, 4_000_000_000_000))
def test_iso_seconds_writes_what_datetime_writes(ms: int) -> None:
    expected = datetime.fromtimestamp(ms // 1000, UTC).isoformat()
    assert iso_seconds(ms) == expected
    assert iso_seconds(ms) == expected  # remembered


@settings(max_examples=400, deadline=None)
@given(
    st.floats(-80, 80),
    st.floats(-179, 179),
    st.lists(st.tuples(st.floats(-0.0006, 0.0006), st.floats(-0.0012, 0.0012)), max_size=12),
)
def test_a_search_finds_every_call_within_its_radius_across_cell_edges(
    lat: float, lon: float, offsets: list[tuple[float, float]]
) -> None:
    # Calls a few tens of metres apart, anywhere: many pairs straddle a cell edge.
    index = EventIndex(WINDOW_S, RADIUS, SHOWN)
    recs = [
        EventRecord(f"C{i}", T0, "", "", lat + dy, lon + dx, "x", 1)
        for i, (dy, dx) in enumerate(offsets)
    ]
    index.add_and_ask(recs)
    probe = EventRecord("Q", T0, "", "", lat, lon, "x", 1)
    (block,) = index.add_and_ask([probe], (RADIUS, 60.0))
    expected = {r.id for r in recs if within(lat, lon, r.lat, r.lon, RADIUS)}
    assert {c["id"] for c in block["recent_calls_nearby"]["calls"]} == expected
    assert block["nearby"]["count"] == len(expected)
