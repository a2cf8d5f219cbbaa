"""Who may see what: a client never receives what its role and scope do not allow."""

from __future__ import annotations

from typing import Any

import pytest

from push.access import Subscription, admits_alert, admits_case, admits_event, parse_subscription
from rtic.errors import ContractError
from rtic.schemas import Role, Severity
from rtic.tokens import Principal

BRUM = "E08000025"


def alert(**kw: Any) -> dict[str, Any]:
    base = {
        "alert_id": "a1",
        "severity": "high",
        "area": [BRUM, "E05001197"],
        "location": {"lat": 52.4862, "lon": -1.8904},
        "audience": {
            "roles": ["rtic_analyst", "supervisor", "officer"],
            "areas": [BRUM],
            "officers": [],
        },
    }
    base.update(kw)
    return base


ANALYST = Principal("an", Role.RTIC_ANALYST)
OFFICER = Principal("OFF-1", Role.OFFICER)
CITIZEN = Principal("cit", Role.CITIZEN, cases=("CASE-1",))
CASE_OFFICER = Principal("co", Role.CASE_OFFICER)


def test_analysts_see_everything_narrowed_by_their_filters() -> None:
    assert admits_alert(ANALYST, Subscription(), alert())
    assert not admits_alert(ANALYST, Subscription(areas=frozenset({"E08000026"})), alert())
    assert not admits_alert(
        ANALYST, Subscription(severities=frozenset({Severity.CRITICAL})), alert()
    )


def test_officers_get_alerts_for_them_in_their_areas_or_radius_only() -> None:
    assert not admits_alert(OFFICER, Subscription(), alert())
    assert admits_alert(
        OFFICER, Subscription(), alert(audience={"roles": [], "officers": ["OFF-1"]})
    )
    assert admits_alert(OFFICER, Subscription(areas=frozenset({BRUM})), alert())
    near = Subscription(radius_m=1000, position=(52.49, -1.89))
    far = Subscription(radius_m=1000, position=(52.4081, -1.5106))
    assert admits_alert(OFFICER, near, alert())
    assert not admits_alert(OFFICER, far, alert())
    assert admits_alert(
        OFFICER, Subscription(radius_m=1000), alert(), officer_position=(52.487, -1.891)
    )
    analysts_only = alert(audience={"roles": ["rtic_analyst"], "areas": [BRUM], "officers": []})
    assert not admits_alert(OFFICER, Subscription(areas=frozenset({BRUM})), analysts_only)


def test_citizens_never_get_alerts_or_events_and_only_their_cases() -> None:
    assert not admits_alert(CITIZEN, Subscription(events=True), alert())
    assert not admits_event(CITIZEN, Subscription(events=True), [BRUM])
    assert admits_case(CITIZEN, Subscription(), "CASE-1")
    assert not admits_case(CITIZEN, Subscription(), "CASE-2")


def test_event_feed_only_for_analysts_and_supervisors_who_ask() -> None:
    assert admits_event(ANALYST, Subscription(events=True), [BRUM])
    assert not admits_event(ANALYST, Subscription(events=False), [BRUM])
    assert not admits_event(OFFICER, Subscription(events=True), [BRUM])
    assert admits_event(
        Principal("s", Role.SUPERVISOR), Subscription(events=True, areas=frozenset({BRUM})), [BRUM]
    )


def test_case_officers_only_alerts_addressed_to_the_role() -> None:
    assert not admits_alert(CASE_OFFICER, Subscription(), alert())
    assert admits_alert(CASE_OFFICER, Subscription(), alert(audience={"roles": ["case_officer"]}))
    assert admits_case(CASE_OFFICER, Subscription(), "ANY")


@pytest.mark.parametrize(
    "msg",
    [
        {"severities": ["urgent"]},
        {"areas": "E08000025"},
        {"areas": [1, 2]},
        {"radius_m": -5},
        {"radius_m": "far"},
        {"radius_m": True},
        {"position": {"lat": "x"}},
        {"position": {"lat": 100, "lon": 0}},
        {"events": "yes"},
    ],
)
def test_bad_subscriptions_are_refused(msg: dict[str, Any]) -> None:
    with pytest.raises(ContractError):
        parse_subscription(msg)


def test_a_good_subscription_is_understood() -> None:
    sub = parse_subscription(
        {
            "areas": [BRUM],
            "severities": ["critical"],
            "radius_m": 500,
            "position": {"lat": 52.5, "lon": -1.9},
            "events": True,
        }
    )
    assert sub.describe() == {
        "areas": [BRUM],
        "severities": ["critical"],
        "radius_m": 500.0,
        "position": {"lat": 52.5, "lon": -1.9},
        "cases": [],
        "events": True,
    }
