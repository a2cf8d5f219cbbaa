"""Verified hotlist hit: only a verified check raises it, at the entry's severity, for the
officers around the read and the desk, with a stable id and whole source ids."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rtic.schemas import EventKind, PlateReadV1, VerificationV1
from rules.anpr_verified import RULE, VerifiedCheck, officers_near
from rules.base import RuleContext, evaluate
from rules.catalogue import default_rules
from tests.conftest import NOW, make_read

HOTLIST = [r for r in default_rules() if r.spec.rule_id == "anpr_hotlist_hit"]
READ_AT = (52.4862, -1.8904)


def pending(confidence: float = 0.15, reason: str = "firearms") -> dict[str, Any]:
    read = PlateReadV1.model_validate(
        make_read(vrm="8X15 0KT", confidence=confidence, lat=READ_AT[0], lon=READ_AT[1])
    )
    hit = {"id": "HL1", "vrm": "BX15 OKT", "reason": reason, "match": "misread"}
    enrichment = {"area_codes": ["E08000025"], "history": {"hotlist": [hit]}}
    (alert,) = evaluate(HOTLIST, EventKind.ANPR, read, enrichment, NOW)
    return alert.model_dump(mode="json")


def verification(alert: dict[str, Any], outcome: str = "verified", **kw: Any) -> VerificationV1:
    return VerificationV1.model_validate(
        {
            "verification_id": "verification-1",
            "alert_id": alert["alert_id"],
            "outcome": outcome,
            "by": "officer-7",
            "role": "officer",
            "at": NOW.isoformat(),
            "camera_id": alert["details"]["camera_id"],
            "alert": alert,
            **kw,
        }
    )


def ping(lat: float, lon: float, age_s: float = 60, status: str | None = "available") -> dict:
    return {
        "lat": lat,
        "lon": lon,
        "at": (NOW - timedelta(seconds=age_s)).isoformat(),
        "status": status,
    }


OFFICERS = {
    "near": ping(52.4870, -1.8900),  # about 100 m
    "committed-near": ping(52.4900, -1.8904, status="committed"),  # about 420 m
    "far": ping(52.4081, -1.5106),  # Coventry
    "off-duty-near": ping(52.4862, -1.8905, status="off_duty"),
    "stale-near": ping(52.4862, -1.8904, age_s=7200),
    "broken": {"lat": "x", "lon": 1, "at": NOW.isoformat()},
}


def run(v: VerificationV1, officers: dict[str, Any] = OFFICERS) -> list:
    ctx: RuleContext[Any] = RuleContext(now=NOW, enrichment={}, spec=RULE.spec)
    return RULE.fn(VerifiedCheck(v, officers), ctx)


def test_a_verified_low_confidence_firearms_check_becomes_critical_for_units_around_it() -> None:
    alert = pending(confidence=0.15)
    assert alert["severity"] == "high"  # held back while pending
    (hit,) = run(verification(alert))
    assert hit.rule_id == "anpr_verified_hit" and hit.severity == "critical"
    assert hit.source_event_ids == [*alert["source_event_ids"], "verification-1"]
    assert hit.audience.officers == ["officer-7", "near", "committed-near"]
    assert set(hit.audience.roles) == {"rtic_analyst", "supervisor"}  # not every officer
    assert hit.details["verification"]["state"] == "verified"
    assert hit.details["verification"]["read_vrm"] == "8X15 0KT"
    assert hit.details["verified_by"]["by"] == "officer-7"
    assert hit.details["pending_alert_id"] == alert["alert_id"]
    assert hit.version == alert["version"] and hit.location is not None
    assert hit.title.startswith("Verified hotlist hit: BX15 OKT")


def test_the_id_is_stable_from_the_pending_alert() -> None:
    alert = pending()
    (a,) = run(verification(alert))
    (b,) = run(verification(alert, verification_id="verification-2"))
    (other,) = run(verification(pending()))
    assert a.alert_id == b.alert_id != other.alert_id


def test_not_a_match_or_another_rule_raises_nothing() -> None:
    alert = pending()
    assert run(verification(alert, outcome="not_a_match")) == []
    assert run(verification({**alert, "rule_id": "repeat_calls"})) == []


def test_severity_is_the_entry_reason_and_an_analyst_is_not_an_officer() -> None:
    (stolen,) = run(verification(pending(reason="stolen"), by="analyst-1", role="rtic_analyst"))
    assert stolen.severity == "high"
    assert "analyst-1" not in stolen.audience.officers


def test_officers_near_keeps_fresh_on_duty_fixes_within_the_radius_nearest_first() -> None:
    found = officers_near(OFFICERS, *READ_AT, 3000, NOW, 1800)
    assert found == ["near", "committed-near"]
    assert officers_near(OFFICERS, *READ_AT, 50, NOW, 1800) == []
    assert "stale-near" in officers_near(OFFICERS, *READ_AT, 3000, NOW, 86_400)
