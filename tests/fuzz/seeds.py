"""Real messages the fuzz suite mutates, per topic: the shared factories of
tests/conftest.py, the demand simulator's own events (``simulators.demand``), the
recorded call stream in data/calls through its mapping (``simulators.replay``), and
the alerts the real rules raise on a hotlisted read."""

from __future__ import annotations

import itertools
from datetime import timedelta
from functools import cache
from typing import Any

from enrichers.geo import GeoIndex
from rtic.schemas import EventKind, PlateReadV1
from rtic.settings import PROJECT_ROOT
from rules.base import evaluate
from rules.catalogue import default_rules
from simulators.demand import DemandModel
from simulators.replay import AdapterReport, read_file
from tests.conftest import (
    NOW,
    make_call,
    make_hotlist_change,
    make_incident,
    make_officer_location,
    make_read,
)
from tests.force_area import force_geo

DATA_DIR = PROJECT_ROOT / "data"
RECORDED_CALLS = DATA_DIR / "calls" / "montgomery-county-pa-911-sample.csv"
CALLS_MAPPING = PROJECT_ROOT / "simulators" / "mappings" / "montgomery-911.yaml"


def geo() -> GeoIndex:
    return force_geo() if DATA_DIR == PROJECT_ROOT / "data" else GeoIndex.load(DATA_DIR)


@cache
def simulated() -> dict[str, list[dict[str, Any]]]:
    """The demand simulator's first events, by kind (a camera batch cut to three reads)."""
    model = DemandModel(geo(), seed=14, start=NOW, rate=30.0)
    out: dict[str, list[dict[str, Any]]] = {}
    for ev in itertools.islice(model.events(), 400):
        value = dict(ev.value)
        if "reads" in value:
            value["reads"] = value["reads"][:3]
        bucket = out.setdefault(ev.kind, [])
        if len(bucket) < 8:
            bucket.append(value)
    return out


@cache
def recorded_calls() -> list[dict[str, Any]]:
    """Calls of the recorded stream in data/calls, as the replay sends them."""
    events = read_file(RECORDED_CALLS, CALLS_MAPPING, AdapterReport())
    return [e.value for e in events[:8]]


def reference_changes() -> list[dict[str, Any]]:
    """A change of every kind of reference data, and a delete."""
    square = [[-1.9, 52.48], [-1.88, 52.48], [-1.88, 52.49], [-1.9, 52.49], [-1.9, 52.48]]
    until = (NOW + timedelta(hours=1)).isoformat()
    return [
        make_hotlist_change(),
        make_hotlist_change(
            "CV19ABC",
            "firearms",
            entry={"vrm": "CV19ABC", "reason": "firearms", "expires_at": until},
        ),
        {
            "kind": "geofence",
            "op": "upsert",
            "id": "GF-1",
            "entry": {"name": "Bullring", "geometry": {"type": "Polygon", "coordinates": [square]}},
        },
        {
            "kind": "geofence",
            "op": "upsert",
            "id": "GF-2",
            "entry": {"name": "Event", "circle": {"lat": 52.48, "lon": -1.89, "radius_m": 500}},
        },
        {
            "kind": "place",
            "op": "upsert",
            "id": "PL-1",
            "entry": {"name": "Refuge", "kind": "refuge", "lat": 52.48, "lon": -1.89},
        },
        {
            "kind": "snooze",
            "op": "upsert",
            "id": "SN-1",
            "entry": {"rule_id": "anpr_hotlist_hit", "vrm": "AB12CDE", "until": until, "by": "an"},
        },
        {
            "kind": "person_marker",
            "op": "upsert",
            "id": "PM-1",
            "entry": {"person_id": "P-100", "marker": "weapons"},
        },
        {
            "kind": "address_marker",
            "op": "upsert",
            "id": "AM-1",
            "entry": {"address": "12 Example Street", "marker": "dog", "lat": 52.48, "lon": -1.89},
        },
        {"kind": "hotlist", "op": "delete", "id": "HL-gone"},
    ]


@cache
def hotlist_alert() -> dict[str, Any]:
    """The alert the real hotlist rule raises on a read of a listed plate (a plate check:
    low confidence), as it goes on ``rtic.alerts.v1``."""
    hotlist = [r for r in default_rules() if r.spec.rule_id == "anpr_hotlist_hit"]
    read = PlateReadV1.model_validate(
        make_read(vrm="BX15OKT", camera_id="CAM-9", confidence=0.2, lat=52.4862, lon=-1.8904)
    )
    hit = {"id": "HL1", "vrm": "BX15 OKT", "reason": "wanted_driver", "match": "exact"}
    enrichment = {"area_codes": ["E08000025"], "history": {"hotlist": [hit]}}
    (alert,) = evaluate(hotlist, EventKind.ANPR, read, enrichment, NOW)
    return alert.model_dump(mode="json")


def alert_ack() -> dict[str, Any]:
    return {
        "alert_id": hotlist_alert()["alert_id"],
        "action": "assign",
        "by": "sup-1",
        "role": "supervisor",
        "at": (NOW + timedelta(seconds=30)).isoformat(),
        "note": "unit BW-21",
    }


def verification() -> dict[str, Any]:
    alert = hotlist_alert()
    return {
        "verification_id": "VER-1",
        "alert_id": alert["alert_id"],
        "outcome": "verified",
        "by": "OFF-1",
        "role": "officer",
        "at": NOW.isoformat(),
        "camera_id": "CAM-9",
        "alert": alert,
    }


def statement() -> dict[str, Any]:
    return {
        "statement_id": "ST-1",
        "version": 2,
        "case_ref": "WM-2026-0000001",
        "at": NOW.isoformat(),
        "by_role": "citizen",
    }


def evidence() -> dict[str, Any]:
    return {
        "evidence_id": "EV-1",
        "kind": "body_worn_video",
        "captured_by": "OFF-7",
        "captured_at": (NOW + timedelta(minutes=20)).isoformat(),
        "sha256": "ab" * 32,
        "storage_uri": "s3://evidence/EV-1.mp4",
        "incident_id": "INC-1",
        "case_ref": "WM-2026-0000001",
        "location": {"lat": 52.48, "lon": -1.89},
        "bytes": 1024,
        "filename": "EV-1.mp4",
    }


def audit() -> dict[str, Any]:
    return {
        "audit_id": "AU-1",
        "at": NOW.isoformat(),
        "actor": "an-1",
        "role": "rtic_analyst",
        "action": "alert_opened",
        "object_type": "alert",
        "object_id": hotlist_alert()["alert_id"],
        "origin": "127.0.0.1",
        "detail": {"version": 1},
    }


@cache
def by_topic() -> dict[str, list[dict[str, Any]]]:
    """Seeds for every topic a worker decodes, by the topic's short name."""
    sim = simulated()
    batch = {"reads": [make_read(), make_read(vrm="CV19ABC"), make_read(confidence=0.4)]}
    return {
        "calls": [make_call(), *sim.get("call", []), *recorded_calls()],
        "incidents": [make_incident(), *sim.get("incident", [])],
        "anpr": [make_read(), batch, *sim.get("anpr", [])],
        "officer-locations": [make_officer_location(), *sim.get("officer_location", [])],
        "reference": [*reference_changes(), *sim.get("reference", [])[:4]],
        "alerts": [hotlist_alert()],
        "alert-acks": [alert_ack()],
        "verifications": [verification()],
        "statements": [statement()],
        "evidence": [evidence()],
        "audit": [audit()],
    }
