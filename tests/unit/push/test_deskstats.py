"""The desk's hourly aggregates (pure: a fake clock, plain messages) and their endpoint's
authorisation, each role."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from push.deskstats import HOURS, DeskStats
from tests.conftest import NOW, make_call
from tests.unit.push.test_web import make_app, token


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def enriched(**kw: Any) -> dict[str, Any]:
    return {**make_call(**kw), "enrichment": {"kind": "call", "area_codes": []}}


def alert(alert_id: str, at: datetime, rule: str = "anpr_hotlist_hit", sev: str = "high") -> dict:
    return {"alert_id": alert_id, "rule_id": rule, "severity": sev, "created_at": at.isoformat()}


def test_calls_are_counted_once_by_hour_grade_and_category() -> None:
    stats = DeskStats(Clock(NOW))
    an_hour_ago = (NOW - timedelta(hours=1)).isoformat()
    first = enriched(received_at=NOW.isoformat(), grade=1, category="burglary")
    stats.observe("enriched", first)
    stats.observe("enriched", first)  # a redelivery
    stats.observe("enriched", enriched(received_at=an_hour_ago, grade=2, category="burglary"))
    stats.observe("enriched", enriched(received_at=an_hour_ago, grade=2, category="theft"))
    stats.observe("enriched", enriched(received_at=(NOW - timedelta(days=2)).isoformat()))
    stats.observe("enriched", {"reads": [{"read_id": "r1", "enrichment": {"kind": "anpr"}}]})
    stats.call(make_call(received_at="yesterday"))  # nonsense: ignored, not raised
    stats.observe("enriched", {"reads": "nonsense"})
    snap = stats.snapshot()
    assert len(snap["hours"]) == HOURS and snap["hours"][-1] == "2026-11-24T21:00:00+00:00"
    by_grade = snap["calls"]["by_grade"]
    assert by_grade["1"][-1] == 1 and by_grade["2"][-2] == 2 and sum(by_grade["1"]) == 1
    assert snap["calls"]["by_category"]["burglary"][-2:] == [1, 1]
    assert sum(sum(v) for v in by_grade.values()) == 3


def test_anpr_hits_verifications_and_open_alerts_by_age() -> None:
    clock = Clock(NOW)
    stats = DeskStats(clock)
    stats.observe("alert", alert("a1", NOW - timedelta(minutes=5)))
    stats.observe("alert", {**alert("a1", NOW - timedelta(minutes=5)), "version": 2})
    stats.observe("alert", alert("a2", NOW - timedelta(minutes=90), "repeat_calls", "medium"))
    stats.observe("alert", alert("a3", NOW - timedelta(hours=30)))  # re-read, long open
    stats.observe("ack", {"alert_id": "a4", "action": "dismiss"})
    stats.observe("alert", alert("a4", NOW - timedelta(minutes=2)))  # its ack came first
    v = {"alert_id": "a1", "outcome": "verified", "at": NOW.isoformat(), "by": "an-1"}
    stats.observe("verification", v)
    stats.observe("verification", {**v, "outcome": "not_a_match"})  # first decision counts
    stats.observe(
        "verification", {"alert_id": "a9", "outcome": "not_a_match", "at": NOW.isoformat()}
    )
    stats.observe("verification", {"alert_id": "a8", "outcome": "maybe", "at": NOW.isoformat()})
    snap = stats.snapshot()
    assert sum(snap["anpr"]["hits"]) == 2 and snap["anpr"]["hits"][-1] == 2  # a1, a4
    assert snap["anpr"]["verified"][-1] == 1 and snap["anpr"]["not_a_match"][-1] == 1
    ages = {b["label"]: b for b in snap["open_alerts"]["by_age"]}
    assert ages["under 15 min"]["count"] == 1 and ages["1 to 4 hours"]["count"] == 1
    assert ages["1 to 4 hours"]["by_severity"] == {"medium": 1}
    assert ages["over 24 hours"]["count"] == 1
    stats.observe("ack", {"alert_id": "a1", "action": "ack"})
    assert stats.snapshot()["open_alerts"]["total"] == 2
    clock.at = NOW + timedelta(hours=25)  # a day on: the hours roll off
    later = stats.snapshot()
    assert sum(later["anpr"]["hits"]) == 0 and later["calls"]["by_grade"] == {}


@pytest.mark.parametrize(
    "role, expected",
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
def test_only_analysts_and_supervisors_read_the_desk_stats(role: str | None, expected: int) -> None:
    _, http = make_app()
    with http:
        headers = {"Authorization": f"Bearer {token(role)}"} if role else {}
        answer = http.get("/api/desk/stats", headers=headers)
        assert answer.status_code == expected, answer.text
        if expected == 200:
            body = answer.json()
            assert len(body["hours"]) == HOURS and body["open_alerts"]["total"] == 0
