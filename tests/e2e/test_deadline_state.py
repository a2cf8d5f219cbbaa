"""Time-based rules keep their state in Faust tables: it is in the table's changelog topic,
and a deadline that passes while the worker is being restarted still raises its alert."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from cli.services import free_port
from rtic.settings import Settings
from tests.conftest import make_incident
from tests.engine import Engine

pytestmark = pytest.mark.e2e


@pytest.fixture
def restartable_engine(
    tansu_url: str, redis_url: str, tmp_path: Path, unique: Callable[[str], str]
) -> Iterator[Engine]:
    """An engine of its own (its worker is restarted), promising assignment within 10 s."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  response_promise:\n    params: {assign_within_s: 10}\n")
    settings = Settings(
        kafka_url=tansu_url,
        redis_url=redis_url,
        topic_prefix=f"{unique('restart').lower()}.",
        gateway_port=free_port(),
        rules_file=rules,
    )
    eng = Engine(settings, tmp_path)
    try:
        eng.start()
        yield eng
    finally:
        eng.stop()


async def _changelog_keys(engine: Engine, topic: str) -> set[bytes]:
    return {rec.key for rec in await engine.read_all(topic) if rec.key is not None}


async def test_a_response_promise_survives_a_worker_restart(restartable_engine: Engine) -> None:
    engine = restartable_engine
    incident = make_incident(
        event="created", grade=1, units=[], call_ids=["C-x"], at=datetime.now(UTC).isoformat()
    )
    async with engine.tail(engine.topics.alerts) as alerts:
        async with engine.producer() as producer:
            await engine.send(producer, engine.topics.incidents, incident["incident_id"], incident)
        changelog = f"{engine.settings.topic_prefix}rtic-engine-response-promises-changelog"
        deadline = asyncio.get_running_loop().time() + 8
        while incident["incident_id"].encode() not in await _changelog_keys(engine, changelog):
            assert asyncio.get_running_loop().time() < deadline, "promise not in the changelog"
        # The worker goes before the 10 s promise passes; the new one must still raise it.
        await engine.restart_worker()
        async with asyncio.timeout(40):
            async for msg in alerts:
                alert = orjson.loads(msg.value)
                if (
                    alert["rule_id"] == "response_promise"
                    and incident["incident_id"] in alert["source_event_ids"]
                ):
                    break
    assert alert["details"]["stage"] == "not_assigned"
    assert "worker-" in " ".join(p.name for p in engine.log_dir.iterdir())
