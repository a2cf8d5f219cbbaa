"""Every scenario raises exactly its expected alerts on the event clock (`rtic rules test`'s
path: the real pipeline and Redis, time-based rules checked after each event)."""

from __future__ import annotations

import secrets
from collections import Counter

import pytest

from cli.tryout import run_rules_over
from enrichers.geo import GeoIndex
from rules.catalogue import default_rules
from simulators.replay import ReplayEvent
from simulators.scenarios import SCENARIOS
from tests.conftest import NOW

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_scenario_on_the_event_clock(name: str, geo: GeoIndex, redis_url: str) -> None:
    scenario = SCENARIOS[name]
    tag = secrets.token_hex(3).upper()
    events = sorted(
        (
            ReplayEvent(kind=ev.kind, key=ev.key, value=ev.value, at=at)
            for at, ev in scenario.events(NOW, tag)
        ),
        key=lambda e: (e.kind.value != "reference", e.at),
    )
    alerts = await run_rules_over(events, default_rules(), geo, redis_url)
    latest = {a.alert_id: a for a in alerts}  # updates keep the id
    got = Counter(a.rule_id for a in latest.values())
    assert got == Counter({e.rule_id: e.count for e in scenario.expected}), [
        a.title for a in latest.values()
    ]
    for a in latest.values():
        assert a.details.get("why"), a.rule_id


def test_every_rule_of_the_catalogue_fires_in_some_scenario() -> None:
    expected = {e.rule_id for s in SCENARIOS.values() for e in s.expected}
    # Rules no event or timer raises (a person's verification raises anpr_verified_hit:
    # tests/e2e/test_verify.py) are out of a scenario's reach.
    by_events = {r.spec.rule_id for r in default_rules() if r.spec.kinds or r.spec.tracks}
    assert by_events <= expected
    assert {r.spec.rule_id for r in default_rules()} - by_events == {"anpr_verified_hit"}
