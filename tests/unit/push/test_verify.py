"""Verify before action, the gateway's part: who may answer a plate check, what is
written, acknowledged and audited, the ``verification`` frames, and the camera counts
over HTTP (each role). The core without sockets or Kafka; HTTP through Starlette's
test client."""

from __future__ import annotations

import warnings
from typing import Any

import orjson
import pytest

from enrichers.verifications import MemoryVerifications
from push.fanout import Client, Fanout
from push.verify import Verifications
from push.web import create_app
from rtic.casework import AuditAction
from rtic.schemas import EventKind, PlateReadV1, Role, VerificationV1
from rtic.settings import PROJECT_ROOT
from rtic.tokens import Principal, issue_token
from rules.base import evaluate
from rules.catalogue import default_rules
from tests.conftest import NOW, make_read
from tests.unit.push.test_fanout import RecordingSink, drain, make_core, reply

with warnings.catch_warnings():  # the test client's own deprecation, not the gateway's
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

READ_AT = (52.4862, -1.8904)
HOTLIST = [r for r in default_rules() if r.spec.rule_id == "anpr_hotlist_hit"]


class VerificationLog:
    """The Kafka edge's ``verification`` as a list."""

    def __init__(self) -> None:
        self.written: list[VerificationV1] = []

    def verification(self, verification: VerificationV1) -> None:
        self.written.append(verification)


def check_alert(read_id: str = "R-1", camera: str = "CAM-1", **read: Any) -> dict[str, Any]:
    event = PlateReadV1.model_validate(
        make_read(
            read_id=read_id,
            vrm="8X15 0KT",
            camera_id=camera,
            confidence=0.15,
            lat=READ_AT[0],
            lon=READ_AT[1],
            **read,
        )
    )
    hit = {"id": "HL1", "vrm": "BX15 OKT", "reason": "firearms", "match": "misread"}
    enrichment = {"area_codes": ["E08000025"], "history": {"hotlist": [hit]}}
    (alert,) = evaluate(HOTLIST, EventKind.ANPR, event, enrichment, NOW)
    return alert.model_dump(mode="json")


def connect(core: Fanout, role: Role, sub: str, **subscribe: Any) -> Client:
    c = core.connect(Principal(sub, role))
    assert reply(core, c, {"type": "subscribe", **subscribe})["type"] == "subscribed"
    drain(c)
    return c


class Desk:
    def __init__(self) -> None:
        self.core = make_core()
        self.log = VerificationLog()
        self.store = MemoryVerifications()
        self.verify = Verifications(self.core, self.log, self.store)
        near = {"radius_m": 1000.0, "position": {"lat": READ_AT[0], "lon": READ_AT[1]}}
        far = {"radius_m": 1000.0, "position": {"lat": 52.4081, "lon": -1.5106}}
        self.clients = {
            "analyst": connect(self.core, Role.RTIC_ANALYST, "an-1"),
            "supervisor": connect(self.core, Role.SUPERVISOR, "sup-1"),
            "officer": connect(self.core, Role.OFFICER, "off-near", **near),
            "far officer": connect(self.core, Role.OFFICER, "off-far", **far),
            "case officer": connect(self.core, Role.CASE_OFFICER, "co-1"),
            "citizen": connect(self.core, Role.CITIZEN, "cit-1"),
            "contact handler": connect(self.core, Role.CONTACT_HANDLER, "ch-1"),
        }
        self.alert = check_alert()
        self.core.publish_alert(self.alert)

    def send(self, who: str, alert_id: str, outcome: str = "verified") -> dict[str, Any]:
        msg = {"type": "verify", "alert_id": alert_id, "outcome": outcome, "note": "plate seen"}
        return reply(self.core, self.clients[who], msg)


@pytest.fixture
def desk() -> Desk:
    return Desk()


@pytest.mark.parametrize(
    ("who", "answer"),
    [
        ("analyst", "verify_ack"),
        ("supervisor", "verify_ack"),
        ("officer", "verify_ack"),  # it was sent to them
        ("far officer", "not_found"),  # never sent: as if it did not exist
        ("case officer", "not_found"),
        ("citizen", "not_found"),
        ("contact handler", "not_found"),
    ],
)
def test_who_may_answer_a_plate_check(desk: Desk, who: str, answer: str) -> None:
    got = desk.send(who, desk.alert["alert_id"])
    if answer == "verify_ack":
        assert got["type"] == "verify_ack" and got["outcome"] == "verified"
        assert got["alert_id"] == desk.alert["alert_id"] and got["verification_id"]
        assert len(desk.log.written) == 1
    else:
        assert (got["type"], got["code"]) == ("error", "not_found")
        assert desk.log.written == [] and desk.core.sink.acks == []  # type: ignore[attr-defined]


def test_an_unknown_alert_or_one_that_is_no_check_is_refused(desk: Desk) -> None:
    assert desk.send("analyst", "no-such-alert")["code"] == "not_found"
    other = {**check_alert("R-2"), "alert_id": "repeat-1", "rule_id": "repeat_calls", "details": {}}
    desk.core.publish_alert(other)
    assert desk.send("analyst", "repeat-1")["code"] == "not_pending"
    bad = reply(desk.core, desk.clients["analyst"], {"type": "verify", "alert_id": "x"})
    assert bad["code"] == "bad_verify" and "verified or not_a_match" in bad["message"]
    assert desk.log.written == []


def test_a_verification_is_written_acknowledged_and_audited(desk: Desk) -> None:
    got = desk.send("officer", desk.alert["alert_id"], "not_a_match")
    (v,) = desk.log.written
    assert v.verification_id == got["verification_id"] and v.outcome == "not_a_match"
    assert (v.by, v.role, v.camera_id, v.note) == ("off-near", Role.OFFICER, "CAM-1", "plate seen")
    assert v.alert == desk.alert  # the pending alert as the gateway holds it
    sink = desk.core.sink
    assert isinstance(sink, RecordingSink)
    (ack,) = sink.acks
    assert (ack.alert_id, ack.action, ack.note) == (v.alert_id, "ack", "verify: not_a_match")
    (record,) = [r for r in desk.core.audit.drain() if r.actor == "off-near"]
    assert record.action is AuditAction.ALERT_NOT_A_MATCH and record.object_id == v.alert_id
    assert record.detail["verification_id"] == v.verification_id
    assert record.detail["read_vrm"] == "8X15 0KT" and record.reason == "plate seen"


def test_the_first_decision_read_back_is_pushed_to_who_holds_the_alert(desk: Desk) -> None:
    for c in desk.clients.values():
        drain(c)
    desk.send("officer", desk.alert["alert_id"], "verified")
    desk.send("analyst", desk.alert["alert_id"], "not_a_match")  # both before the read-back
    first, second = desk.log.written
    for c in desk.clients.values():
        drain(c)
    desk.verify.read(orjson.loads(first.model_dump_json()))
    desk.verify.read(orjson.loads(second.model_dump_json()))  # later: not pushed
    got = {name: drain(c) for name, c in desk.clients.items()}
    for name in ("analyst", "supervisor", "officer"):
        (frame,) = got[name]
        assert frame["type"] == "verification"
        assert (frame["alert_id"], frame["outcome"], frame["by"], frame["role"]) == (
            desk.alert["alert_id"],
            "verified",
            "off-near",
            "officer",
        )
        assert frame["verification_id"] == first.verification_id and frame["version"] == 1
    for name in ("far officer", "case officer", "citizen", "contact handler"):
        assert got[name] == []
    # Resume shows the decided state; a new answer is refused.
    kept = desk.core.recent[desk.alert["alert_id"]]
    assert kept["details"]["verification"]["state"] == "verified"
    assert kept["details"]["verification"]["by"] == "off-near"
    again = desk.send("supervisor", desk.alert["alert_id"])
    assert again["code"] == "not_pending" and "already answered: verified" in again["message"]


def test_a_later_read_folded_into_the_alert_is_a_new_check(desk: Desk) -> None:
    desk.send("officer", desk.alert["alert_id"], "not_a_match")
    desk.verify.read(orjson.loads(desk.log.written[0].model_dump_json()))
    newer = {**desk.alert, "version": 2}
    desk.core.publish_alert(newer)
    assert desk.send("officer", desk.alert["alert_id"], "verified")["type"] == "verify_ack"


def test_an_unreadable_verification_on_the_topic_is_ignored(desk: Desk) -> None:
    desk.verify.read({"alert_id": "x"})
    desk.verify.read({"nonsense": True})
    assert desk.verify.decided == {}


async def test_camera_counts_worst_first_with_pending_checks(desk: Desk) -> None:
    for i in range(3):
        await desk.store.decide(f"a{i}", 1, f"v{i}", "not_a_match", "CAM-BAD")
    await desk.store.decide("b", 1, "vb", "verified", "CAM-GOOD")
    await desk.store.decide("c", 1, "vc", "not_a_match", "CAM-GOOD")
    await desk.store.decide("c", 1, "vd", "verified", "CAM-GOOD")  # second decision: not counted
    rows = await desk.verify.cameras()
    assert rows == [
        {"camera_id": "CAM-BAD", "verified": 0, "not_a_match": 3, "pending": 0, "not_a_match_rate": 1.0},
        {"camera_id": "CAM-GOOD", "verified": 1, "not_a_match": 1, "pending": 0, "not_a_match_rate": 0.5},
        {"camera_id": "CAM-1", "verified": 0, "not_a_match": 0, "pending": 1, "not_a_match_rate": None},
    ]  # fmt: skip


SECRET = "unit-test-secret-at-least-32-bytes-long"


@pytest.mark.parametrize(
    ("role", "status"),
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
def test_camera_counts_are_for_analysts_and_supervisors(
    desk: Desk, role: str | None, status: int
) -> None:
    app = create_app(
        desk.core, secret=SECRET, data_dir=PROJECT_ROOT / "data", consuming=lambda: True
    )
    app.state.verifications = desk.verify
    headers = {}
    if role is not None:
        bearer = issue_token(SECRET, sub="someone", role=role, now=NOW, ttl_seconds=3600)
        headers["Authorization"] = f"Bearer {bearer}"
    with TestClient(app) as http:
        answer = http.get("/api/anpr/cameras", headers=headers)
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.json()["cameras"][0]["camera_id"] == "CAM-1"
    else:
        assert "error" in answer.json()


def test_camera_counts_without_a_store_are_unavailable(desk: Desk) -> None:
    desk.verify.store = None
    app = create_app(
        desk.core, secret=SECRET, data_dir=PROJECT_ROOT / "data", consuming=lambda: True
    )
    app.state.verifications = desk.verify
    bearer = issue_token(SECRET, sub="an", role="rtic_analyst", now=NOW, ttl_seconds=3600)
    with TestClient(app) as http:
        answer = http.get("/api/anpr/cameras", headers={"Authorization": f"Bearer {bearer}"})
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "unavailable"
