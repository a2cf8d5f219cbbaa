"""Snoozes: which alerts a live snooze holds back, by rule, area, plate (misreads folded)
and time; the index is built from the layer's entries as Redis holds them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rtic.schemas import AlertV1, EventKind, PlateReadV1
from rules.base import evaluate
from rules.catalogue import default_rules
from rules.snooze import SnoozeIndex, alert_plates, split_snoozed
from tests.conftest import NOW, make_read

WARD, DISTRICT, OTHER_WARD = "E05001197", "E08000025", "E05001200"
RULES = [
    r
    for r in default_rules()
    if r.spec.rule_id in ("anpr_hotlist_hit", "vehicle_linked_to_incident")
]


def hotlist_alert(vrm_read: str = "BX15 OKT", listed: str = "BX15 OKT") -> AlertV1:
    read = PlateReadV1.model_validate(make_read(vrm=vrm_read))
    enrichment = {
        "areas": {"ward": {"code": WARD, "name": "Nechells"}},
        "area_codes": [DISTRICT, WARD],
        "history": {
            "hotlist": [
                {
                    "id": "HL-1",
                    "vrm": listed,
                    "reason": "stolen",
                    "match": "exact" if vrm_read == listed else "misread",
                }
            ]
        },
    }
    (alert,) = evaluate(RULES, EventKind.ANPR, read, enrichment, NOW)
    return alert


def linked_alert(vrm: str = "RB12 BER") -> AlertV1:
    read = PlateReadV1.model_validate(make_read(vrm=vrm))
    link = {
        "incident_id": "INC-1",
        "vrm": vrm,
        "role": "suspect",
        "category": "robbery",
        "grade": 1,
        "at": (NOW - timedelta(minutes=10)).isoformat(),
    }
    enrichment = {"area_codes": [DISTRICT, WARD], "history": {"linked_incidents": [link]}}
    (alert,) = evaluate(RULES, EventKind.ANPR, read, enrichment, NOW)
    return alert


def entry(**kw: Any) -> dict[str, Any]:
    return {"until": (NOW + timedelta(hours=1)).isoformat(), "by": "analyst-1", **kw}


def index(**entries: dict[str, Any]) -> SnoozeIndex:
    return SnoozeIndex.build(1, entries)


def test_the_plate_rules_say_which_plate_the_alert_is_about() -> None:
    assert hotlist_alert().details["vrm"] == "BX15 OKT"
    assert linked_alert().details["vrm"] == "RB12 BER"
    assert alert_plates(hotlist_alert("8X15 0KT")) == {"8X150KT"}


def test_a_plate_snooze_holds_back_that_plate_for_that_rule_only() -> None:
    snoozes = index(S1=entry(rule_id="anpr_hotlist_hit", vrm="bx15okt"))
    match = snoozes.match(hotlist_alert(), NOW)
    assert match is not None and match.snooze_id == "S1" and match.by == "analyst-1"
    assert snoozes.match(hotlist_alert("CT12 ZEN", "CT12 ZEN"), NOW) is None  # another plate
    assert snoozes.match(linked_alert("BX15 OKT"), NOW) is None  # another rule


def test_a_misread_of_the_snoozed_plate_is_held_back_too() -> None:
    snoozes = index(S1=entry(rule_id="anpr_hotlist_hit", vrm="BX15 OKT"))
    assert snoozes.match(hotlist_alert(vrm_read="8X15 0KT"), NOW) is not None
    # and the other way round: the snooze names the misread, the alert the listed plate
    assert index(S2=entry(vrm="8X1S 0KT")).match(hotlist_alert(), NOW) is not None


def test_an_area_snooze_holds_back_the_rule_in_that_area_at_any_level() -> None:
    ward = index(S1=entry(rule_id="anpr_hotlist_hit", area=WARD))
    district = index(S1=entry(rule_id="anpr_hotlist_hit", area=DISTRICT))
    elsewhere = index(S1=entry(rule_id="anpr_hotlist_hit", area=OTHER_WARD))
    assert ward.match(hotlist_alert(), NOW) is not None
    assert district.match(hotlist_alert(), NOW) is not None
    assert elsewhere.match(hotlist_alert(), NOW) is None


def test_a_snooze_without_a_rule_holds_back_every_rule_there() -> None:
    snoozes = index(S1=entry(area=WARD))
    assert snoozes.match(hotlist_alert(), NOW) is not None
    assert snoozes.match(linked_alert(), NOW) is not None


def test_a_snooze_ends_at_until() -> None:
    snoozes = index(S1=entry(vrm="BX15OKT"))
    until = NOW + timedelta(hours=1)
    assert snoozes.match(hotlist_alert(), until - timedelta(seconds=1)) is not None
    assert snoozes.match(hotlist_alert(), until) is None
    assert snoozes.match(hotlist_alert(), until + timedelta(days=1)) is None


def test_the_longest_running_of_several_matching_snoozes_is_named() -> None:
    snoozes = index(
        SHORT=entry(vrm="BX15OKT", until=(NOW + timedelta(minutes=5)).isoformat()),
        LONG=entry(area=WARD, until=(NOW + timedelta(hours=3)).isoformat()),
        OTHER=entry(
            rule_id="repeat_calls", area=WARD, until=(NOW + timedelta(hours=9)).isoformat()
        ),
    )
    match = snoozes.match(hotlist_alert(), NOW)
    assert match is not None and match.snooze_id == "LONG"


def test_bad_entries_are_skipped_not_fatal_and_an_empty_index_matches_nothing() -> None:
    snoozes = SnoozeIndex.build(
        4, {"BAD": {"by": "x", "until": "yesterday"}, "NOAREA": entry(), "OK": entry(area=WARD)}
    )
    assert snoozes.skipped == 2 and len(snoozes) == 1 and snoozes.version == 4
    assert SnoozeIndex().match(hotlist_alert(), NOW) is None
    assert not SnoozeIndex()


def test_split_keeps_order_and_pairs_each_held_alert_with_its_snooze() -> None:
    snoozed, kept_a, kept_b = hotlist_alert(), linked_alert(), hotlist_alert("CT12ZEN", "CT12ZEN")
    kept, held = split_snoozed(index(S1=entry(vrm="BX15OKT")), [kept_a, snoozed, kept_b], NOW)
    assert kept == [kept_a, kept_b]
    assert [(a.alert_id, s.snooze_id) for a, s in held] == [(snoozed.alert_id, "S1")]


@pytest.mark.parametrize("details", [{}, {"vrm": ""}, {"vrm": None}, {"vrm_read": 12}])
def test_an_alert_about_no_plate_has_no_plates(details: dict[str, Any]) -> None:
    alert = hotlist_alert().model_copy(update={"details": details})
    assert alert_plates(alert) == set()
    assert index(S1=entry(vrm="BX15OKT")).match(alert, NOW) is None
