"""Who may see what: a client never receives what its role and scope do not allow."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from push.access import (
    CaseScope,
    Subscription,
    admits_alert,
    admits_case,
    admits_event,
    case_update_for,
    citizen_timeline,
    may_see_case,
    parse_subscription,
)
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
    assert admits_case(CITIZEN, Subscription(), CaseScope("CASE-1"))
    assert not admits_case(CITIZEN, Subscription(), CaseScope("CASE-2"))


def test_event_feed_only_for_analysts_and_supervisors_who_ask() -> None:
    assert admits_event(ANALYST, Subscription(events=True), [BRUM])
    assert not admits_event(ANALYST, Subscription(events=False), [BRUM])
    assert not admits_event(OFFICER, Subscription(events=True), [BRUM])
    assert admits_event(
        Principal("s", Role.SUPERVISOR), Subscription(events=True, areas=frozenset({BRUM})), [BRUM]
    )


def test_a_supervisors_token_areas_bound_the_event_feed() -> None:
    """The feed carries officers' positions and calls: a supervisor whose token names
    areas gets the events of those areas only, whatever they subscribe to."""
    coventry = Principal("s", Role.SUPERVISOR, areas=("E08000026",))
    for sub in (Subscription(events=True), Subscription(events=True, areas=frozenset({BRUM}))):
        assert not admits_event(coventry, sub, [BRUM])
        assert not admits_event(coventry, sub, [])
    assert admits_event(coventry, Subscription(events=True), ["E08000026", "E05001234"])
    assert admits_event(Principal("s", Role.SUPERVISOR), Subscription(events=True), [BRUM])


def test_case_officers_only_alerts_addressed_to_the_role() -> None:
    assert not admits_alert(CASE_OFFICER, Subscription(), alert())
    assert admits_alert(CASE_OFFICER, Subscription(), alert(audience={"roles": ["case_officer"]}))
    assert admits_case(CASE_OFFICER, Subscription(), CaseScope("ANY", officer_in_charge="co"))


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


SUPERVISOR = Principal("sup", Role.SUPERVISOR)


@pytest.mark.parametrize(
    "msg",
    [
        {"severities": "critical"},
        {"cases": [1]},
        {"cases": "CASE-1"},
        {"areas": [f"A{i}" for i in range(501)]},
        {"radius_m": 0},
        {"radius_m": 50_001},
        {"radius_m": [5]},
        {"position": {"lat": 52.5}},
        {"position": [52.5, -1.9]},
        {"position": "here"},
        {"position": {"lat": 52.5, "lon": 181}},
        {"events": 1},
    ],
)
def test_more_bad_subscriptions_are_refused(msg: dict[str, Any]) -> None:
    with pytest.raises(ContractError):
        parse_subscription(msg)


def test_empty_and_null_fields_mean_no_narrowing() -> None:
    assert parse_subscription({}) == Subscription()
    assert parse_subscription({"areas": None, "severities": None, "cases": None}) == Subscription()
    assert parse_subscription({"radius_m": 50_000}).radius_m == 50_000.0
    assert parse_subscription({"type": "subscribe", "colour": "blue"}) == Subscription()


def test_supervisors_see_what_analysts_see() -> None:
    for sub in (
        Subscription(),
        Subscription(areas=frozenset({BRUM})),
        Subscription(areas=frozenset({"E08000026"})),
        Subscription(severities=frozenset({Severity.LOW})),
    ):
        assert admits_alert(SUPERVISOR, sub, alert()) == admits_alert(ANALYST, sub, alert())


def test_an_officer_severity_filter_applies_even_to_alerts_naming_them() -> None:
    mine = alert(audience={"roles": [], "officers": ["OFF-1"]})
    assert admits_alert(OFFICER, Subscription(), mine)
    assert not admits_alert(OFFICER, Subscription(severities=frozenset({Severity.LOW})), mine)
    assert not admits_alert(Principal("OFF-2", Role.OFFICER), Subscription(), mine)


def test_an_officer_radius_uses_the_last_ping_before_the_sent_position() -> None:
    """The device's own pings bind the scope: a position claimed elsewhere does not
    widen it (issue 14), and without pings the claimed one is all there is."""
    claims_coventry = Subscription(radius_m=1000, position=(52.4081, -1.5106))
    claims_brum = Subscription(radius_m=1000, position=(52.487, -1.891))
    in_coventry, in_brum = (52.4081, -1.5106), (52.487, -1.891)
    assert admits_alert(OFFICER, claims_coventry, alert(), officer_position=in_brum)
    assert not admits_alert(OFFICER, claims_brum, alert(), officer_position=in_coventry)
    assert admits_alert(OFFICER, claims_brum, alert())  # no ping yet: the claim
    assert not admits_alert(OFFICER, Subscription(radius_m=1000), alert())  # nowhere known
    assert not admits_alert(
        OFFICER,
        Subscription(radius_m=1000),
        alert(location=None),
        officer_position=(52.487, -1.891),
    )


def test_an_officer_may_match_on_the_audience_areas_too() -> None:
    a = alert(area=[], audience={"roles": ["officer"], "areas": [BRUM], "officers": []})
    assert admits_alert(OFFICER, Subscription(areas=frozenset({BRUM})), a)


def test_case_updates_follow_who_may_see_the_case_then_the_subscription() -> None:
    scoped = Principal("co", Role.CASE_OFFICER, cases=("CASE-1",))
    case1, case2 = CaseScope("CASE-1"), CaseScope("CASE-2")
    assert admits_case(scoped, Subscription(), case1)
    assert not admits_case(scoped, Subscription(), case2)
    assert not admits_case(scoped, Subscription(cases=frozenset({"CASE-2"})), case2)
    on_it = CaseScope("CASE-2", officer_in_charge="co")
    assert not admits_case(CASE_OFFICER, Subscription(cases=frozenset({"CASE-1"})), on_it)
    assert admits_case(SUPERVISOR, Subscription(), CaseScope("ANY"))
    assert not admits_case(OFFICER, Subscription(), case1)
    # A citizen cannot widen their scope by subscribing to someone else's case.
    assert not admits_case(CITIZEN, Subscription(cases=frozenset({"CASE-2"})), case2)


CASE = CaseScope("WM-2026-0000001", "OFF-1", frozenset({"OFF-2"}), frozenset({BRUM}))


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        (Principal("cit", Role.CITIZEN, cases=("WM-2026-0000001",)), True),
        (Principal("cit", Role.CITIZEN, cases=("WM-2026-0000002",)), False),
        (Principal("cit", Role.CITIZEN), False),
        (Principal("OFF-1", Role.OFFICER), True),  # in charge
        (Principal("OFF-2", Role.OFFICER), True),  # attending
        (Principal("OFF-3", Role.OFFICER), False),
        (Principal("OFF-3", Role.OFFICER, cases=("WM-2026-0000001",)), True),  # given it
        (Principal("OFF-1", Role.CASE_OFFICER), True),
        (Principal("co-9", Role.CASE_OFFICER), False),
        (Principal("sup", Role.SUPERVISOR), True),  # force-wide
        (Principal("sup", Role.SUPERVISOR, areas=(BRUM, "E08000026")), True),
        (Principal("sup", Role.SUPERVISOR, areas=("E08000026",)), False),
        (Principal("OFF-1", Role.RTIC_ANALYST), False),  # analysts see no case
        (Principal("an", Role.RTIC_ANALYST, cases=("WM-2026-0000001",)), False),
    ],
)
def test_who_may_see_a_case(who: Principal, sees: bool) -> None:
    assert may_see_case(who, CASE) is sees


def test_a_supervisor_with_areas_does_not_see_a_case_without_one() -> None:
    nowhere = CaseScope("WM-2026-0000003")
    assert not may_see_case(Principal("sup", Role.SUPERVISOR, areas=(BRUM,)), nowhere)
    assert may_see_case(Principal("sup", Role.SUPERVISOR), nowhere)


UPDATE = {
    "update_id": "u1",
    "case_ref": "WM-2026-0000001",
    "at": "2026-11-24T21:35:00+00:00",
    "change": "timeline",
    "status": "under_investigation",
    "category": "burglary",
    "officer_in_charge": "OFF-1",
    "area": [BRUM],
    "entry": {
        "entry_id": "e1",
        "case_ref": "WM-2026-0000001",
        "kind": "officer_assigned",
        "at": "2026-11-24T21:35:00+00:00",
        "text": "An officer has been assigned to your case",
        "citizen_visible": True,
        "staff_note": "PC Smith, knows the family",
    },
}


def test_a_citizen_gets_their_part_of_a_case_update_and_staff_all_of_it() -> None:
    citizen = Principal("cit", Role.CITIZEN, cases=("WM-2026-0000001",))
    assert case_update_for(Principal("OFF-1", Role.OFFICER), UPDATE) is UPDATE
    assert case_update_for(citizen, UPDATE) == {
        "case_ref": "WM-2026-0000001",
        "status": "under_investigation",
        "at": "2026-11-24T21:35:00+00:00",
        "change": "timeline",
        "entry": {
            "at": "2026-11-24T21:35:00+00:00",
            "kind": "officer_assigned",
            "text": "An officer has been assigned to your case",
        },
    }
    staff_only = {**UPDATE, "entry": {**UPDATE["entry"], "citizen_visible": False}}
    assert case_update_for(citizen, staff_only) is None
    link = {**UPDATE, "change": "link", "entry": None, "link": {"kind": "alert", "id": "a1"}}
    assert case_update_for(citizen, link) is None
    status = {**UPDATE, "change": "status", "entry": None, "status": "closed"}
    assert case_update_for(citizen, status) == {
        "case_ref": "WM-2026-0000001",
        "status": "closed",
        "at": UPDATE["at"],
        "change": "status",
    }


def test_a_citizens_timeline_is_theirs_newest_first_without_staff_notes() -> None:
    entries = [
        {"at": "2026-11-24T21:00:00+00:00", "kind": "received", "text": "Received"},
        {
            "at": "2026-11-24T21:10:00+00:00",
            "kind": "alert_raised",
            "text": "x",
            "citizen_visible": False,
        },
        {
            "at": "2026-11-24T21:20:00+00:00",
            "kind": "officer_attended",
            "text": "Visited",
            "staff_note": "secret",
        },
    ]
    assert citizen_timeline(entries) == [
        {"at": "2026-11-24T21:20:00+00:00", "kind": "officer_attended", "text": "Visited"},
        {"at": "2026-11-24T21:00:00+00:00", "kind": "received", "text": "Received"},
    ]
    closing = [
        {"at": "2026-11-24T22:00:00+00:00", "kind": "outcome", "text": "Outcome: arrested."},
        {"at": "2026-11-24T22:00:00+00:00", "kind": "closed", "text": "Closed."},
    ]
    assert [e["kind"] for e in citizen_timeline(entries + closing)] == [
        "closed",
        "outcome",
        "officer_attended",
        "received",
    ]


# ---- properties: a client never receives what its role and scope do not allow -----------

AREAS = st.sampled_from([BRUM, "E08000026", "E05001197", "X"])
SEVERITIES = st.sampled_from(list(Severity))
ROLE_NAMES = st.sampled_from([r.value for r in Role] + ["nobody"])
OFFICER_IDS = st.sampled_from(["OFF-1", "OFF-2", "cit", "an"])
POINTS = st.tuples(st.floats(52.3, 52.7), st.floats(-2.2, -1.4))

ALERTS = st.fixed_dictionaries(
    {
        "alert_id": st.just("a"),
        "severity": SEVERITIES.map(str),
        "area": st.lists(AREAS, max_size=3),
        "location": st.none() | POINTS.map(lambda p: {"lat": p[0], "lon": p[1]}),
        "audience": st.fixed_dictionaries(
            {
                "roles": st.lists(ROLE_NAMES, max_size=3),
                "areas": st.lists(AREAS, max_size=2),
                "officers": st.lists(OFFICER_IDS, max_size=2),
            }
        ),
    }
)
SUBSCRIPTIONS = st.builds(
    Subscription,
    areas=st.frozensets(AREAS, max_size=2),
    severities=st.frozensets(SEVERITIES, max_size=2),
    radius_m=st.none() | st.floats(1, 50_000),
    position=st.none() | POINTS,
    cases=st.frozensets(st.sampled_from(["CASE-1", "CASE-2"]), max_size=2),
    events=st.booleans(),
)
PRINCIPALS = st.builds(
    Principal,
    sub=OFFICER_IDS,
    role=st.sampled_from(list(Role)),
    cases=st.lists(st.sampled_from(["CASE-1", "CASE-2"]), max_size=2).map(tuple),
    areas=st.lists(AREAS, max_size=2).map(tuple),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PRINCIPALS, SUBSCRIPTIONS, ALERTS, st.none() | POINTS)
def test_an_alert_goes_only_where_role_scope_and_filters_allow(
    who: Principal,
    sub: Subscription,
    a: dict[str, Any],
    position: tuple[float, float] | None,
) -> None:
    if not admits_alert(who, sub, a, officer_position=position):
        return
    audience = a["audience"]
    assert who.role is not Role.CITIZEN
    assert not sub.severities or a["severity"] in {s.value for s in sub.severities}
    if who.role is Role.OFFICER:
        assert who.sub in audience["officers"] or "officer" in audience["roles"]
    if who.role is Role.CASE_OFFICER:
        assert "case_officer" in audience["roles"]
    if who.role is not Role.OFFICER and sub.areas:
        assert sub.areas & set(a["area"])


@given(PRINCIPALS, SUBSCRIPTIONS, st.lists(AREAS, max_size=3))
def test_the_live_feed_is_only_for_analysts_and_supervisors_who_asked(
    who: Principal, sub: Subscription, areas: list[str]
) -> None:
    if admits_event(who, sub, areas):
        assert who.role in (Role.RTIC_ANALYST, Role.SUPERVISOR) and sub.events
        assert not sub.areas or sub.areas & set(areas)


CASE_SCOPES = st.builds(
    CaseScope,
    case_ref=st.sampled_from(["CASE-1", "CASE-2", "CASE-3"]),
    officer_in_charge=st.none() | OFFICER_IDS,
    attending=st.frozensets(OFFICER_IDS, max_size=2),
    area=st.frozensets(AREAS, max_size=2),
)


@given(PRINCIPALS, SUBSCRIPTIONS, CASE_SCOPES)
def test_a_case_update_only_reaches_someone_on_the_case_or_over_it(
    who: Principal, sub: Subscription, case: CaseScope
) -> None:
    if admits_case(who, sub, case):
        assert who.role is not Role.RTIC_ANALYST
        assert not sub.cases or case.case_ref in sub.cases
        if who.role is Role.CITIZEN:
            assert case.case_ref in who.cases
        if who.role in (Role.OFFICER, Role.CASE_OFFICER):
            on_it = who.sub == case.officer_in_charge or who.sub in case.attending
            assert on_it or case.case_ref in who.cases
        if who.role is Role.SUPERVISOR and who.areas:
            assert case.area & set(who.areas)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    _containers,
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["areas", "severities", "radius_m", "position", "cases", "events", "x"]),
        JSONISH,
    )
)
def test_any_subscribe_message_is_understood_or_refused_with_a_contract_error(
    msg: dict[str, Any],
) -> None:
    try:
        sub = parse_subscription(msg)
    except ContractError:
        return
    assert sub.radius_m is None or 0 < sub.radius_m <= 50_000
    if sub.position is not None:
        assert -90 <= sub.position[0] <= 90 and -180 <= sub.position[1] <= 180


@pytest.mark.parametrize(
    "position", [{"lat": "52.5", "lon": -1.9}, {"lat": True, "lon": -1.9}, [52.5, -1.9]]
)
def test_positions_must_be_numbers(position: Any) -> None:
    with pytest.raises(ContractError, match="decimal degrees"):
        parse_subscription({"radius_m": 500, "position": position})
