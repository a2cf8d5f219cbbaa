"""The demand model: deterministic, valid against the contract, inside the force area, and it
makes the first rules fire."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

import pytest

from enrichers.geo import GeoIndex
from rtic.plates import canonical_vrm, normalise_vrm
from rtic.schemas import EventKind, validate_event
from simulators.demand import DemandModel, SimEvent

START = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
KINDS = {
    "call": EventKind.CALL,
    "incident": EventKind.INCIDENT,
    "anpr": EventKind.ANPR,
    "officer_location": EventKind.OFFICER_LOCATION,
    "reference": EventKind.REFERENCE,
}


def take(geo: GeoIndex, n: int, seed: int = 1, rate: float = 10.0) -> list[SimEvent]:
    return list(itertools.islice(DemandModel(geo, seed=seed, start=START, rate=rate).events(), n))


def test_same_seed_same_events_other_seed_other_events(geo: GeoIndex) -> None:
    a, b, c = take(geo, 400), take(geo, 400), take(geo, 400, seed=2)
    assert [(e.at, e.kind, e.key, e.value) for e in a] == [
        (e.at, e.kind, e.key, e.value) for e in b
    ]
    assert [e.value for e in a] != [e.value for e in c]


def test_every_message_is_valid_and_in_time_order(geo: GeoIndex) -> None:
    events = take(geo, 1500)
    for ev in events:
        validate_event(KINDS[ev.kind], ev.value)
    times = [e.at for e in events]
    assert times == sorted(times)
    kinds = Counter(e.kind for e in events)
    assert {"call", "anpr", "officer_location", "reference", "incident"} <= set(kinds)


def test_points_fall_inside_the_force_area(geo: GeoIndex) -> None:
    points = []
    for ev in take(geo, 3000):
        v = ev.value
        if ev.kind in ("call", "incident"):
            points.append((v["location"]["lat"], v["location"]["lon"]))
        elif ev.kind == "anpr":
            points.extend((r["lat"], r["lon"]) for r in v["reads"])
        elif ev.kind == "officer_location":
            points.append((v["lat"], v["lon"]))
    areas = geo.areas([p[0] for p in points], [p[1] for p in points])
    outside = [p for p, a in zip(points, areas, strict=True) if "district" not in a]
    assert outside == []


def test_hotlisted_plates_and_misreads_are_read(geo: GeoIndex) -> None:
    model = DemandModel(geo, seed=3, start=START, rate=10.0)
    listed = {canonical_vrm(h["vrm"]): normalise_vrm(h["vrm"]) for h in model.hotlist}
    events = list(itertools.islice(model.events(), 3000))
    hits = [
        normalise_vrm(r["vrm"])
        for e in events
        if e.kind == "anpr"
        for r in e.value["reads"]
        if canonical_vrm(r["vrm"]) in listed
    ]
    assert hits, "no hotlisted plate was read"
    assert any(h not in listed.values() for h in hits), "no misread of a hotlisted plate"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_repeat_callers_call_three_times_within_minutes(geo: GeoIndex, seed: int) -> None:
    by_address: Counter[str] = Counter()
    for ev in DemandModel(geo, seed=seed, start=START, rate=5.0).events():
        if ev.kind == "call":
            by_address[ev.value["location"]["address"]] += 1
            if by_address.most_common(1)[0][1] >= 3:
                break
    assert (ev.at - START).total_seconds() < 240  # at the demo rate of 5 events/s


def test_incidents_follow_their_lifecycle(geo: GeoIndex) -> None:
    order = ["created", "assigned", "arrived", "closed"]
    seen: dict[str, list[str]] = {}
    for ev in take(geo, 4000, rate=50.0):
        if ev.kind == "incident":
            seen.setdefault(ev.key, []).append(ev.value["event"])
    assert seen
    for steps in seen.values():
        assert steps == order[: len(steps)]


def test_bad_arguments_are_refused(geo: GeoIndex) -> None:
    with pytest.raises(ValueError):
        DemandModel(geo, seed=1, start=datetime(2026, 1, 1), rate=1.0)
    with pytest.raises(ValueError):
        DemandModel(geo, seed=1, start=START, rate=0)


def test_officers_take_jobs_attend_and_become_free_again(geo: GeoIndex) -> None:
    from simulators.demand import Volumes

    volumes = Volumes(
        calls_per_s=0.05,
        reads_per_s=0,
        pings_per_s=2.0,
        cameras=1,
        officers=5,
        repeat_share=0,
        repeat_callers=0,
    )
    model = DemandModel(geo, seed=11, start=START, volumes=volumes, rhythm=False)
    events = list(itertools.islice(model.events(), 6000))
    jobs: dict[str, dict[str, object]] = {}
    for ev in events:
        if ev.kind == "incident" and ev.value["units"]:
            job = jobs.setdefault(
                ev.key, {"officer": ev.value["units"][0], "loc": ev.value["location"]}
            )
            job[ev.value["event"]] = ev.at
    done = [j for j in jobs.values() if "closed" in j]
    assert done, "no job went through its whole lifecycle"
    checked = 0
    for job in done:
        pings = [e for e in events if e.kind == "officer_location" and e.key == job["officer"]]
        for p in pings:
            if job["arrived"] <= p.at < job["closed"]:  # type: ignore[operator]
                assert p.value["status"] == "committed"
                assert (p.value["lat"], p.value["lon"]) == (job["loc"]["lat"], job["loc"]["lon"])  # type: ignore[index]
                checked += 1
    assert checked, "no ping fell inside a job"
    # With five officers and a call every 20 s, some grade 1-2 incidents find nobody free.
    unassigned = {e.key for e in events if e.kind == "incident"} - set(jobs)
    assert unassigned
