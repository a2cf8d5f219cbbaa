"""Scenarios are valid contract messages, unique per tag, in the force area."""

from __future__ import annotations

import pytest

from enrichers.geo import GeoIndex
from rtic.schemas import EventKind, validate_event
from simulators.scenarios import SCENARIOS
from tests.conftest import NOW


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_messages_are_valid_and_tagged(name: str, geo: GeoIndex) -> None:
    scenario = SCENARIOS[name]
    a = scenario.events(NOW, "T1")
    b = scenario.events(NOW, "T2")
    assert a and scenario.expected and scenario.description
    for at, ev in a:
        validate_event(ev.kind, ev.value)
        assert at >= NOW
        if ev.kind is not EventKind.REFERENCE:
            value = ev.value.get("location", ev.value)
            assert geo.areas([value["lat"]], [value["lon"]])[0], f"{name}: outside the force area"

    def ids(events: list) -> set[str]:
        return {
            next(ev.value[k] for k in ("read_id", "call_id", "incident_id", "id") if k in ev.value)
            for _, ev in events
        }

    assert ids(a).isdisjoint(ids(b))
