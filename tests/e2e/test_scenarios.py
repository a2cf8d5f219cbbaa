"""Each scenario raises exactly its expected alerts, end to end (to the websocket).

Scenarios that need rules the catalogue does not have yet are skipped with that
reason. The engine's rule file escalates unacknowledged critical alerts after 5 s
(tests/conftest.py), so the firearms scenario's escalation arrives in the test.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from rules.catalogue import default_rules
from simulators.scenarios import SCENARIOS, send_scenario
from tests.engine import Engine

pytestmark = pytest.mark.e2e
KNOWN_RULES = {r.spec.rule_id for r in default_rules()}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_scenario_raises_exactly_its_alerts(engine: Engine, name: str) -> None:
    scenario = SCENARIOS[name]
    missing = set(scenario.needs_rules) - KNOWN_RULES
    if missing:
        pytest.skip(f"needs rules not in the catalogue yet: {sorted(missing)}")
    tag = secrets.token_hex(3).upper()
    async with engine.client(role="rtic_analyst", sub=f"scenario-{name}") as ws:
        await send_scenario(engine.settings, name, tag, datetime.now(UTC))
        alerts: list[dict] = []
        wanted = sum(e.count for e in scenario.expected)
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with asyncio.timeout(3):
                    msg = orjson.loads(await ws.recv())
            except TimeoutError:
                if len({a["alert_id"] for a in alerts}) >= wanted:
                    break  # quiet for 3 s after the expected alerts: nothing more is coming
                continue
            if msg.get("type") == "alert" and any(tag in sid for sid in msg["source_event_ids"]):
                alerts.append(msg)
    latest: dict[str, dict] = {}
    for a in alerts:  # an update (same id, higher version) replaces what came before
        if a["alert_id"] not in latest or a.get("version", 1) > latest[a["alert_id"]].get(
            "version", 1
        ):
            latest[a["alert_id"]] = a
    alerts = list(latest.values())
    got = Counter(a["rule_id"] for a in alerts)
    assert got == Counter({e.rule_id: e.count for e in scenario.expected}), [
        a["title"] for a in alerts
    ]
    for exp in scenario.expected:
        if exp.about:
            for a in alerts:
                if a["rule_id"] == exp.rule_id:
                    assert any(s.endswith(exp.about) for s in a["source_event_ids"]), a[
                        "source_event_ids"
                    ]
