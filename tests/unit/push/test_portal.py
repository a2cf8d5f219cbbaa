"""The portal's HTTP side in process (Starlette's ``TestClient``, records in memory, a
recorded Kafka): reports, sessions, the citizen's view, statements, and who may do what.
The same is tested over a real gateway in tests/e2e/test_portal_access.py."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import pytest

from push.fanout import Fanout
from push.portal import (
    SECRET_ALPHABET,
    Portal,
    canonical_secret,
    hash_secret,
    make_secret,
    secret_matches,
)
from push.web import create_app
from records import MemoryRecords
from rtic.casework import TimelineKind
from rtic.errors import ServiceError
from rtic.schemas import CallV1, IncidentEventV1, Role
from rtic.settings import PROJECT_ROOT, Settings
from rtic.tokens import issue_token, verify_token
from tests.conftest import NOW
from tests.unit.push.conftest import make_case, make_entry
from tests.unit.push.test_fanout import RecordingSink

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

SECRET = "portal-unit-secret-long-enough-for-hs256"
THEIRS = "WM-2026-0000999"


@dataclass
class Kafka:
    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, topic: str, key: str, value: bytes) -> None:
        if self.fail:
            raise ServiceError("kafka away")
        self.sent.append((topic, key, orjson.loads(value)))


@dataclass
class Site:
    http: TestClient
    records: MemoryRecords
    kafka: Kafka


@pytest.fixture
def site(records: MemoryRecords) -> Iterator[Site]:
    core = Fanout(sink=RecordingSink(), queue_size=50, clock=lambda: NOW)
    app = create_app(
        core, secret=SECRET, data_dir=PROJECT_ROOT / "data", consuming=lambda: True, records=records
    )
    kafka = Kafka()
    app.state.portal = Portal(Settings(force_code="WM"), SECRET, kafka)
    with TestClient(app) as http:
        yield Site(http, records, kafka)


def report(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "burglary",
        "description": "Someone broke into my shed overnight and took two bikes.",
        "location": {"lat": 52.4862, "lon": -1.8904, "address": "12 Example Street"},
        "occurred_at": (NOW - timedelta(hours=8)).isoformat(),
        "reporter": {"name": "Sam Jones", "phone": "07700 900123", "email": "sam@example.org"},
    }
    body.update(overrides)
    return body


def statement(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "who_i_am": {"name": "Sam Jones", "relation": "victim"},
        "what_i_saw": "A man in a grey hoodie climbing over the back fence.",
        "when": {"from": (NOW - timedelta(hours=9)).isoformat()},
        "where": {"address": "12 Example Street"},
        "free_text": "He left on a bike.",
        "declaration": True,
    }
    body.update(overrides)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff(role: str, sub: str, **kw: Any) -> dict[str, str]:
    return bearer(issue_token(SECRET, sub=sub, role=role, now=NOW, ttl_seconds=600, **kw))


def made(site: Site, **overrides: Any) -> dict[str, Any]:
    answer = site.http.post("/api/portal/reports", json=report(**overrides))
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


# ---- the secret ----------------------------------------------------------------------------


def test_a_secret_is_four_groups_of_four_without_look_alikes() -> None:
    made_ = {make_secret() for _ in range(50)}
    assert len(made_) == 50
    for secret in made_:
        groups = secret.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert set("".join(groups)) <= set(SECRET_ALPHABET)
    assert not set("IO01") & set(SECRET_ALPHABET)


def test_only_a_salted_scrypt_hash_is_kept_and_typing_is_forgiven() -> None:
    secret = "ABCD-EFGH-JKLM-NPQR"
    stored = hash_secret(secret)
    scheme, n, r, p, _salt, _digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert "ABCD" not in stored and hash_secret(secret) != stored  # a new salt each time
    assert secret_matches(secret, stored)
    assert secret_matches(" abcd efgh-jklmnpqr ", stored)
    assert canonical_secret("ab-cd ef") == "ABCDEF"
    assert not secret_matches("ABCD-EFGH-JKLM-NPQS", stored)
    for broken in ("", "plain", "scrypt$x$8$1$a$b", "bcrypt$16384$8$1$AA$AA"):
        assert not secret_matches(secret, broken)


# ---- reports ----------------------------------------------------------------------------


def test_a_report_answers_reference_secret_token_and_enters_the_calls(site: Site) -> None:
    body = made(site)
    ref = body["case_ref"]
    assert ref == "WM-2026-0000001"
    assert body["call_id"] == f"online-{ref}" and "999" in body["notice"]
    who = verify_token(SECRET, body["token"], now=NOW)
    assert (who.role, who.cases, who.sub) == (Role.CITIZEN, (ref,), f"citizen:{ref}")
    (topic, key, call), (incident_topic, incident_key, incident) = site.kafka.sent
    assert (topic, key) == ("rtic.calls.v1", body["call_id"])
    # and the desk's queue gets an incident for it, the call linked, graded 3 by default
    assert (incident_topic, incident_key) == ("rtic.incidents.v1", f"INC-{ref}")
    valid_incident = IncidentEventV1.model_validate(incident)
    assert (valid_incident.event, valid_incident.grade) == ("created", 3)
    assert valid_incident.call_ids == [body["call_id"]] and incident["case_ref"] == ref
    valid = CallV1.model_validate(call)
    assert valid.channel.value == "online" and valid.category == "burglary"
    assert call["case_ref"] == ref and call["reported_via"] == "portal"
    assert call["caller"] == {
        "name": "Sam Jones",
        "phone": "07700 900123",
        "email": "sam@example.org",
    }
    assert call["location"]["address"] == "12 Example Street"
    stored = site.records.portal_store.credentials[ref]
    assert body["secret"] not in stored.secret_hash
    assert secret_matches(body["secret"], stored.secret_hash)
    assert made(site)["case_ref"] == "WM-2026-0000002"  # the case sequence, shared


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"category": "jaywalking"}, "'category'"),
        ({"category": None}, "'category'"),
        ({"description": ""}, "'description'"),
        ({"location": {"lat": 95, "lon": 0}}, "'location.lat'"),
        ({"location": {"address": "12 Example Street"}}, "'location.lat'"),
        ({"reporter": {"name": "Sam"}}, "phone number or an email"),
        ({"reporter": {"name": "Sam", "email": "not-an-email"}}, "'reporter.email'"),
        ({"occurred_at": "2026-11-24T10:00:00"}, "'occurred_at'"),  # no zone
        ({"occurred_at": (NOW + timedelta(days=1)).isoformat()}, "in the future"),
        ({"secret": "mine"}, "'secret'"),  # no field the contract does not name
    ],
)
def test_a_bad_report_is_refused_saying_what_is_wrong(
    site: Site, change: dict[str, Any], words: str
) -> None:
    answer = site.http.post("/api/portal/reports", json=report(**change))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
    assert words in answer.json()["error"]["message"]
    assert site.kafka.sent == []


def test_a_body_that_is_not_a_json_object_is_refused(site: Site) -> None:
    for raw in (b"not json", b"[1, 2]", "\u00e9".encode("latin-1")):
        answer = site.http.post("/api/portal/reports", content=raw)
        assert answer.status_code == 400, raw


def test_a_report_kafka_does_not_take_is_503_and_no_secret(site: Site) -> None:
    site.kafka.fail = True
    answer = site.http.post("/api/portal/reports", json=report())
    assert answer.status_code == 503 and "secret" not in answer.json()
    assert "try again" in answer.json()["error"]["message"]


def test_reports_are_rate_limited_per_address(site: Site) -> None:
    codes = [site.http.post("/api/portal/reports", json=report()).status_code for _ in range(6)]
    assert codes == [201] * 5 + [429]
    refused = site.http.post("/api/portal/reports", json=report())
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) > 0
    assert len(site.kafka.sent) == 10  # five reports: a call and an incident each


# ---- sessions --------------------------------------------------------------------------------


def test_a_session_from_reference_and_secret(site: Site) -> None:
    body = made(site)
    typed = body["secret"].lower().replace("-", " ")
    answer = site.http.post(
        "/api/portal/session", json={"case_ref": body["case_ref"].lower(), "secret": typed}
    )
    assert answer.status_code == 200
    who = verify_token(SECRET, answer.json()["token"], now=NOW)
    assert who.role is Role.CITIZEN and who.cases == (body["case_ref"],)


def test_an_unknown_reference_and_a_wrong_secret_get_the_same_401(site: Site) -> None:
    body = made(site)
    wrong = site.http.post(
        "/api/portal/session", json={"case_ref": body["case_ref"], "secret": "AAAA-AAAA-AAAA-AAAA"}
    )
    unknown = site.http.post(
        "/api/portal/session", json={"case_ref": THEIRS, "secret": body["secret"]}
    )
    nonsense = site.http.post(
        "/api/portal/session", json={"case_ref": "../../etc", "secret": body["secret"]}
    )
    assert wrong.status_code == unknown.status_code == nonsense.status_code == 401
    assert wrong.json() == unknown.json() == nonsense.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    missing = site.http.post("/api/portal/session", json={"case_ref": THEIRS})
    assert missing.status_code == 400 and "'secret'" in missing.json()["error"]["message"]


def test_sessions_are_rate_limited(site: Site) -> None:
    codes = [
        site.http.post("/api/portal/session", json={"case_ref": THEIRS, "secret": "x"}).status_code
        for _ in range(11)
    ]
    assert codes == [401] * 10 + [429]


# ---- the citizen's view ------------------------------------------------------------------


def test_before_the_case_is_written_its_citizen_sees_it_received(site: Site) -> None:
    body = made(site)
    ref = body["case_ref"]
    view = site.http.get(f"/api/cases/{ref}", headers=bearer(body["token"]))
    assert view.status_code == 200
    got = view.json()
    assert got["pending"] is True and got["status"] == "received"
    assert got["timeline"][0]["text"].startswith("We have received your report made online.")
    estimate = got["next_contact"]
    assert estimate["earliest"] and estimate["latest"] and "not yet assessed" in estimate["basis"]
    # Another citizen, and staff, get nothing of it.
    other = made(site)
    assert site.http.get(f"/api/cases/{ref}", headers=bearer(other["token"])).status_code == 404
    officer = staff("officer", "OFF-1", cases=[ref])
    assert site.http.get(f"/api/cases/{ref}", headers=officer).status_code == 404


def test_a_written_case_shows_its_timeline_and_estimate(site: Site) -> None:
    body = made(site)
    ref = body["case_ref"]
    case = make_case(ref, grade=3, officer_in_charge=None, attending=[], status="assessed")
    site.http.portal.call(
        site.records.cases.save, case, [make_entry(ref, TimelineKind.RECEIVED, 0, "Received")]
    )
    got = site.http.get(f"/api/cases/{ref}", headers=bearer(body["token"])).json()
    assert got["pending"] is False and got["status"] == "assessed"
    assert [e["text"] for e in got["timeline"]] == ["Received"]
    assert "scheduled" in got["next_contact"]["basis"]
    # A token naming a case with neither a case nor a report: nothing to see.
    ghost = issue_token(SECRET, sub="c", role="citizen", now=NOW, ttl_seconds=60, cases=[THEIRS])
    assert site.http.get(f"/api/cases/{THEIRS}", headers=bearer(ghost)).status_code == 404


# ---- statements ----------------------------------------------------------------------------


def test_a_statement_is_saved_amended_as_a_new_version_and_listed(site: Site) -> None:
    body = made(site)
    ref, me = body["case_ref"], bearer(body["token"])
    first = site.http.post(f"/api/cases/{ref}/statements", json=statement(), headers=me)
    assert first.status_code == 201, first.text
    sid = first.json()["statement_id"]
    assert first.json()["version"] == 1 and first.json()["on_timeline"] is True
    amended = site.http.post(
        f"/api/cases/{ref}/statements",
        json=statement(statement_id=sid, what_i_saw="Two men, not one."),
        headers=me,
    )
    assert amended.status_code == 201 and amended.json()["version"] == 2
    topics = [(t, k, v) for t, k, v in site.kafka.sent if t == "rtic.statements.v1"]
    assert [(k, v["statement_id"], v["version"], v["by_role"]) for _, k, v in topics] == [
        (ref, sid, 1, "citizen"),
        (ref, sid, 2, "citizen"),
    ]
    assert "what_i_saw" not in topics[0][2]  # metadata only
    listed = site.http.get(f"/api/cases/{ref}/statements", headers=me).json()["statements"]
    assert [(s["version"], s["body"]["what_i_saw"]) for s in listed] == [
        (1, "A man in a grey hoodie climbing over the back fence."),
        (2, "Two men, not one."),
    ]
    assert listed[0]["body"]["declaration"] is True and listed[0]["mine"] is True
    assert listed[0]["body"]["when"]["from"].startswith("2026-11-24T12:30")
    assert "by" not in listed[0]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"declaration": False}, "'declaration'"),
        ({"declaration": None}, "'declaration'"),
        ({"what_i_saw": ""}, "'what_i_saw'"),
        ({"where": {}}, "say where"),
        ({"when": {"from": "yesterday"}}, "'when.from'"),
        ({"who_i_am": {"name": "Sam", "relation": "spy"}}, "'who_i_am.relation'"),
    ],
)
def test_a_bad_statement_is_refused(site: Site, change: dict[str, Any], words: str) -> None:
    body = made(site)
    answer = site.http.post(
        f"/api/cases/{body['case_ref']}/statements",
        json=statement(**change),
        headers=bearer(body["token"]),
    )
    assert answer.status_code == 400 and words in answer.json()["error"]["message"]


def test_statements_of_a_case_are_its_peoples_alone(site: Site) -> None:
    mine, theirs = made(site), made(site)
    ref = mine["case_ref"]
    site.http.portal.call(site.records.cases.save, make_case(ref))  # OFF-1 in charge, Brum
    site.http.portal.call(site.records.cases.save, make_case(theirs["case_ref"]))
    first = site.http.post(
        f"/api/cases/{ref}/statements", json=statement(), headers=bearer(mine["token"])
    ).json()
    # Another citizen: the case does not exist for them, whatever they send.
    for method, kw in (("GET", {}), ("POST", {"json": statement()})):
        answer = site.http.request(
            method, f"/api/cases/{ref}/statements", headers=bearer(theirs["token"]), **kw
        )
        assert answer.status_code == 404, method
    amend_theirs = site.http.post(
        f"/api/cases/{theirs['case_ref']}/statements",
        json=statement(statement_id=first["statement_id"]),
        headers=bearer(theirs["token"]),
    )
    assert amend_theirs.status_code == 404  # an id of another case is no id of theirs
    # Staff who may see the case read every statement, and give their own.
    officer = staff("officer", "OFF-1")
    taken = site.http.post(f"/api/cases/{ref}/statements", json=statement(), headers=officer)
    assert taken.status_code == 201
    everyone = site.http.get(f"/api/cases/{ref}/statements", headers=officer).json()
    assert len(everyone["statements"]) == 2
    # The citizen sees only their own, and may not amend the officer's.
    own = site.http.get(f"/api/cases/{ref}/statements", headers=bearer(mine["token"])).json()
    assert [s["statement_id"] for s in own["statements"]] == [first["statement_id"]]
    not_theirs = site.http.post(
        f"/api/cases/{ref}/statements",
        json=statement(statement_id=taken.json()["statement_id"]),
        headers=bearer(mine["token"]),
    )
    assert not_theirs.status_code == 404
    # Roles that do not see the case: 404; no token: 401.
    for who in (
        staff("rtic_analyst", "an-1"),
        staff("contact_handler", "ch-1"),
        staff("supervisor", "sup-9", areas=["E08000026"]),
        staff("officer", "OFF-9"),
    ):
        assert site.http.get(f"/api/cases/{ref}/statements", headers=who).status_code == 404
    assert site.http.get(f"/api/cases/{ref}/statements").status_code == 401
    assert staff("supervisor", "sup-1")  # a force-wide supervisor does see it:
    wide = site.http.get(f"/api/cases/{ref}/statements", headers=staff("supervisor", "sup-1"))
    assert wide.status_code == 200


def test_a_statement_kafka_does_not_take_is_kept_and_said(site: Site) -> None:
    body = made(site)
    site.kafka.fail = True
    answer = site.http.post(
        f"/api/cases/{body['case_ref']}/statements",
        json=statement(),
        headers=bearer(body["token"]),
    )
    assert answer.status_code == 201 and answer.json()["on_timeline"] is False
    assert len(site.http.portal.call(site.records.portal.statements, body["case_ref"])) == 1
