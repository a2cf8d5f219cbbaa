"""An officer's scope is bound by what the gateway knows (issue 14): the radius is
capped, the device's own pings place them over a position the client claims, and a
token that names areas limits them to alerts there (plus alerts addressed to them)."""

from __future__ import annotations

from typing import Any

from push.fanout import OFFICER_MAX_RADIUS_M, Client, Fanout
from rtic.schemas import Role
from rtic.settings import Settings
from rtic.tokens import Principal
from tests.unit.push.test_fanout import alert, drain, make_core, reply
from tests.unit.push.test_fanout_records import connect

BRUM, COVENTRY = "E08000025", "E08000026"
BRUM_CENTRE = {"lat": 52.4862, "lon": -1.8904}
COVENTRY_CENTRE = {"lat": 52.4081, "lon": -1.5106}  # about 27 km from Birmingham's


def at(alert_id: str, where: dict[str, float], area: str = BRUM, **kw: Any) -> dict[str, Any]:
    return {**alert(alert_id), "location": where, "area": [area], **kw}


def received(c: Client) -> list[str]:
    return [f["alert_id"] for f in drain(c) if f["type"] == "alert"]


def ping(core: Fanout, officer_id: str, where: dict[str, float]) -> None:
    """A device ping as the Kafka edge hands it (enriched ``officer_location``)."""
    core.publish_enriched(
        {"officer_id": officer_id, **where, "enrichment": {"kind": "officer_location"}}
    )


def test_the_radius_an_officer_asks_for_is_capped() -> None:
    core = make_core(queue_size=100)
    c = connect(core, Principal("OFF-1", Role.OFFICER))
    out = reply(core, c, {"type": "subscribe", "radius_m": 50_000, "position": BRUM_CENTRE})
    assert out["filters"]["radius_m"] == OFFICER_MAX_RADIUS_M == 5000  # the radius in force
    ten_km_north = {"lat": BRUM_CENTRE["lat"] + 0.09, "lon": BRUM_CENTRE["lon"]}
    three_km_north = {"lat": BRUM_CENTRE["lat"] + 0.027, "lon": BRUM_CENTRE["lon"]}
    core.publish_alert(at("far", COVENTRY_CENTRE, COVENTRY))
    core.publish_alert(at("ten", ten_km_north))
    core.publish_alert(at("three", three_km_north))
    assert received(c) == ["three"]
    small = reply(core, c, {"type": "subscribe", "radius_m": 800, "position": BRUM_CENTRE})
    assert small["filters"]["radius_m"] == 800  # under the cap: as asked


def test_the_cap_is_a_setting_and_binds_officers_only() -> None:
    assert Settings().officer_max_radius_km == 5.0
    core = make_core(officer_max_radius_m=2000.0)
    c = connect(core, Principal("OFF-1", Role.OFFICER))
    out = reply(core, c, {"type": "subscribe", "radius_m": 3000, "position": BRUM_CENTRE})
    assert out["filters"]["radius_m"] == 2000
    an = connect(core, Principal("an-1", Role.RTIC_ANALYST))
    assert reply(core, an, {"type": "subscribe", "radius_m": 3000})["filters"]["radius_m"] == 3000


def test_the_devices_own_pings_place_an_officer_over_a_claimed_position() -> None:
    core = make_core(queue_size=100)
    claims_brum = connect(
        core, Principal("OFF-1", Role.OFFICER), {"radius_m": 5000, "position": BRUM_CENTRE}
    )
    core.publish_alert(at("b1", BRUM_CENTRE))
    assert received(claims_brum) == ["b1"]  # no ping yet: the claim is all there is
    ping(core, "OFF-1", COVENTRY_CENTRE)  # the device is in Coventry
    core.publish_alert(at("b2", BRUM_CENTRE))
    core.publish_alert(at("c1", COVENTRY_CENTRE, COVENTRY))
    assert received(claims_brum) == ["c1"]
    ping(core, "OFF-1", BRUM_CENTRE)  # moves back: followed (the roster moves it in place)
    core.publish_alert(at("b3", BRUM_CENTRE))
    core.publish_alert(at("c2", COVENTRY_CENTRE, COVENTRY))
    assert received(claims_brum) == ["b3"]


def test_an_officer_by_radius_without_a_position_is_placed_by_their_first_ping() -> None:
    core = make_core(queue_size=100)
    nowhere = connect(core, Principal("OFF-2", Role.OFFICER), {"radius_m": 2000})
    core.publish_alert(at("b1", BRUM_CENTRE))
    assert received(nowhere) == []
    ping(core, "OFF-2", BRUM_CENTRE)
    core.publish_alert(at("b2", BRUM_CENTRE))
    assert received(nowhere) == ["b2"]


def test_a_token_with_areas_limits_an_officer_to_alerts_there() -> None:
    core = make_core(queue_size=100)
    coventry_only = Principal("OFF-3", Role.OFFICER, areas=(COVENTRY,))
    wide = connect(
        core, coventry_only, {"areas": [BRUM, COVENTRY], "radius_m": 5000, "position": BRUM_CENTRE}
    )
    core.publish_alert(at("b1", BRUM_CENTRE))  # asked for, but not in the token's areas
    core.publish_alert(at("c1", COVENTRY_CENTRE, COVENTRY))
    core.publish_alert(
        at("b2", BRUM_CENTRE, audience={"roles": [], "officers": ["OFF-3"]})
    )  # addressed to them: wherever it is
    assert received(wide) == ["c1", "b2"]
    out = reply(core, wide, {"type": "ack", "alert_id": "b1"})
    assert out["code"] == "not_found"  # nor may they act on it
