"""The gateway's patrol priorities: enriched calls in, refits, what is written to the
topic, and who may read ``GET /api/desk/priorities`` (each role)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from push.priorities import TOPIC_KEY, AreaLookup, PatrolPriorities
from rtic.errors import ServiceError
from rtic.priorities import PrioritiesV1
from rtic.settings import Settings
from tests.conftest import NOW, make_call
from tests.unit.push.test_web import make_app, token

LSOA = {"code": "E01009147", "name": "Birmingham 050E"}


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> Any:
        return self.at


class Topic:
    """What would go to Kafka: (topic, key, value) as written; can be told to fail."""

    def __init__(self) -> None:
        self.written: list[tuple[str, str, bytes]] = []
        self.fail = False

    async def __call__(self, topic: str, key: str, value: bytes) -> None:
        if self.fail:
            raise ServiceError("broker down")
        self.written.append((topic, key, value))


def enriched(lsoa: dict[str, str] | None = LSOA, **kw: Any) -> dict[str, Any]:
    areas = {"lsoa": lsoa} if lsoa else {}
    return {**make_call(**kw), "enrichment": {"kind": "call", "areas": areas}}


def make(topic: Topic | None = None, clock: Clock | None = None) -> PatrolPriorities:
    settings = Settings(priorities_interval_s=1.0)
    return PatrolPriorities(settings, "t.rtic.priorities.v1", topic, clock or Clock())


async def test_enriched_calls_of_modelled_categories_are_fitted_and_written() -> None:
    topic = Topic()
    pri = make(topic)
    ids = [f"CALL-PRI-{i}" for i in range(4)]
    for i, call_id in enumerate(ids):
        at = (NOW - timedelta(hours=i + 1)).isoformat()
        pri.observe("enriched", enriched(call_id=call_id, category="burglary", received_at=at))
    pri.observe("enriched", enriched(call_id=ids[0], category="burglary"))  # again: once
    pri.observe("enriched", enriched(call_id="DA-1", category="domestic_abuse"))  # not modelled
    pri.observe("enriched", enriched(lsoa=None, call_id="OUT-1", category="burglary"))  # no LSOA
    pri.observe("enriched", enriched(call_id="BAD-1", category="burglary", received_at="soon"))
    pri.observe("enriched", {**enriched(call_id="BAD-2", category="burglary"), "location": 3})
    pri.observe("enriched", {"reads": [{"enrichment": {"kind": "anpr"}}]})
    pri.observe("alert", {"alert_id": "A-1"})
    pri.observe("enriched", "nonsense")  # type: ignore[arg-type]
    assert len(pri.recent) == 4
    result = await pri.refit()
    assert isinstance(result, PrioritiesV1) and result.events_used == 4
    await pri.write(result)
    [(name, key, value)] = topic.written
    assert name == "t.rtic.priorities.v1" and key == TOPIC_KEY
    body = orjson.loads(value)
    assert PrioritiesV1.model_validate(body) == result
    first = body["priorities"][0]
    assert first["area_code"] == LSOA["code"] and first["area_name"] == LSOA["name"]
    assert {r["event_id"] for r in first["why"]} == set(ids)
    # No person in a reason: ids, categories, times and areas only.
    assert set(first["why"][0]) == {
        "event_id",
        "kind",
        "category",
        "at",
        "area_code",
        "relation",
        "weight",
    }
    assert pri.published == result.priorities_id and "4 calls" in pri.state
    # Nothing new and the periods not moved on: no refit.
    assert await pri.refit() is None


async def test_a_refit_when_time_moves_on_and_a_broker_failure_is_not_fatal() -> None:
    topic, clock = Topic(), Clock()
    pri = make(topic, clock)
    pri.observe("enriched", enriched(call_id="C-1", category="robbery"))
    assert await pri.refit() is not None
    clock.at = NOW + timedelta(minutes=20)
    again = await pri.refit()
    assert again is not None and again.generated_at == clock.at
    topic.fail = True
    await pri.write(again)  # logged, not raised
    assert pri.published is None and topic.written == []


def test_calls_as_received_are_placed_by_the_shipped_boundaries() -> None:
    pri = make()
    pri.areas = AreaLookup.from_data_dir(Settings().data_dir)
    assert pri.areas is not None
    found = pri.areas.at(52.4862, -1.8904)  # Birmingham city centre
    assert found is not None and found[0].startswith("E01")
    assert pri.call(make_call(call_id="RAW-1", category="burglary"))
    assert pri.recent.events()[0].area_code == found[0]
    assert not pri.call(make_call(call_id="FAR-1", category="burglary", at_point=(51.5, -0.1)))
    lat, lon = pri.areas.centres[found[0]]
    assert abs(lat - 52.486) < 0.05 and abs(lon + 1.89) < 0.05


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("rtic_analyst", 200),
        ("supervisor", 200),
        ("officer", 403),
        ("case_officer", 403),
        ("citizen", 403),
        ("contact_handler", 403),
        (None, 401),
    ],
)
async def test_only_analysts_and_supervisors_read_the_priorities(
    role: str | None, expected: int
) -> None:
    _, http = make_app()
    pri = make()
    pri.observe("enriched", enriched(call_id="C-9", category="assault"))
    await pri.refit()
    http.app.state.priorities = pri  # type: ignore[attr-defined]
    with http:
        headers = {"Authorization": f"Bearer {token(role)}"} if role else {}
        answer = http.get("/api/desk/priorities", headers=headers)
        assert answer.status_code == expected, answer.text
        if expected == 200:
            body = answer.json()
            assert body["current"]["priorities"][0]["why"][0]["event_id"] == "C-9"
        else:
            assert "C-9" not in answer.text


def test_a_gateway_without_priorities_says_so() -> None:
    _, http = make_app()
    with http:
        answer = http.get("/api/desk/priorities", headers={"Authorization": f"Bearer {token()}"})
        assert answer.status_code == 200 and answer.json()["current"] is None
