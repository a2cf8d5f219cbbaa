"""The people's side API through Starlette's TestClient: every role against every
endpoint and the websocket's case updates, the 404 that never says whose, the audited
history search, audit histories, and revoked tokens."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from enrichers.search import Subject
from push.access import CaseScope
from push.fanout import Fanout
from push.revocations import RevocationCache
from push.web import create_app
from records import MemoryRecords
from rtic.casework import AuditAction, AuditObject, AuditV1
from rtic.errors import ServiceError
from rtic.schemas import Role
from rtic.settings import PROJECT_ROOT
from rtic.tokens import issue_token
from tests.conftest import NOW
from tests.unit.push.conftest import COVENTRY, make_case, store_case
from tests.unit.push.test_fanout import RecordingSink
from tests.unit.push.test_fanout_records import update

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient, WebSocketDenialResponse

SECRET = "api-unit-secret-of-thirty-two-bytes!"
MINE = "WM-2026-0000001"  # the case everyone below (but the analyst) is on or over
THEIRS = "WM-2026-0000002"  # someone else's, in another area
NOWHERE = "WM-2026-0009999"  # no such case
SEARCH = {
    "subject": "person",
    "value": "P-100",
    "reason": "repeat caller safeguarding review",
    "reference": "JOB-4411",
}


@dataclass
class FakeSearch:
    """History search answering from a dict (the Redis one is tested in integration)."""

    asked: list[tuple[str, str]] = field(default_factory=list)
    fail: bool = False

    async def search(self, subject: Subject, value: str, at: datetime) -> dict[str, Any]:
        if self.fail:
            raise ServiceError("redis: ConnectionError")
        self.asked.append((subject, value))
        return {
            "person_id": value,
            "markers": [{"id": "m1", "person_id": value, "warning": "violence"}],
            "calls": [{"id": f"CALL-{MINE}", "at": NOW.isoformat(), "category": "burglary"}],
        }


@dataclass
class AuditLog:
    """The Kafka edge's ``write_audit``, as a list (``fail`` to refuse)."""

    records: list[AuditV1] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, records: list[AuditV1]) -> None:
        if self.fail:
            raise ServiceError("kafka away")
        self.records.extend(records)


@dataclass
class Api:
    core: Fanout
    http: TestClient
    records: MemoryRecords
    search: FakeSearch
    audit: AuditLog
    revocations: RevocationCache


def token(role: str, sub: str, **kw: Any) -> str:
    return issue_token(SECRET, sub=sub, role=role, now=NOW, ttl_seconds=3600, **kw)


# One caller per role, each (but the analyst) on or over case MINE, none on THEIRS.
CALLERS: dict[str, str | None] = {
    "rtic_analyst": token("rtic_analyst", "an-1"),
    "officer": token("officer", "OFF-1"),  # in charge of MINE
    "supervisor": token("supervisor", "sup-1", areas=["E08000025"]),
    "case_officer": token("case_officer", "co-1"),  # attending MINE
    "citizen": token("citizen", "cit-1", cases=[MINE]),
    "none": None,
    "revoked": token("supervisor", "sup-2", jti="revoked-jti"),
}


async def revoke(records: MemoryRecords, jti: str) -> None:
    await records.revocations.revoke(jti=jti, sub=None, by="sup-1", reason="lost", at=NOW)


@pytest.fixture
def api(records: MemoryRecords) -> Iterator[Api]:
    core = Fanout(sink=RecordingSink(), queue_size=50, clock=lambda: NOW)
    search, audit = FakeSearch(), AuditLog()
    revocations = RevocationCache(records.revocations, core.metrics)
    app = create_app(
        core,
        secret=SECRET,
        data_dir=PROJECT_ROOT / "data",
        consuming=lambda: True,
        records=records,
        search=search,
        write_audit=audit,
        revocations=revocations,
    )
    with TestClient(app) as http:
        http.portal.call(store_case, records, make_case(MINE, attending=["OFF-2", "co-1"]))
        http.portal.call(
            store_case,
            records,
            make_case(THEIRS, officer_in_charge="OFF-9", attending=[], area=[COVENTRY]),
        )
        http.portal.call(revoke, records, "revoked-jti")
        http.portal.call(revocations.refresh)
        yield Api(core, http, records, search, audit, revocations)


def call(api: Api, caller: str, method: str, path: str, **kw: Any) -> Any:
    bearer = CALLERS[caller]
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return api.http.request(method, path, headers=headers, **kw)


ENDPOINTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "list": ("GET", "/api/cases", {}),
    "mine": ("GET", f"/api/cases/{MINE}", {}),
    "theirs": ("GET", f"/api/cases/{THEIRS}", {}),
    "evidence mine": ("GET", f"/api/evidence/EV-{MINE}", {}),
    "evidence theirs": ("GET", f"/api/evidence/EV-{THEIRS}", {}),
    "search": ("POST", "/api/search", {"json": SEARCH}),
    "audit alert": ("GET", "/api/audit?object_type=alert&object_id=a1", {}),
    "audit mine": ("GET", f"/api/audit?object_type=case&object_id={MINE}", {}),
    "audit theirs": ("GET", f"/api/audit?object_type=case&object_id={THEIRS}", {}),
}
# The answer each caller gets from each endpoint.
EXPECTED: dict[str, dict[str, int]] = {
    "rtic_analyst": {
        "list": 403, "mine": 404, "theirs": 404, "evidence mine": 404, "evidence theirs": 404,
        "search": 200, "audit alert": 200, "audit mine": 403, "audit theirs": 403,
    },
    "officer": {
        "list": 200, "mine": 200, "theirs": 404, "evidence mine": 200, "evidence theirs": 404,
        "search": 403, "audit alert": 403, "audit mine": 403, "audit theirs": 403,
    },
    "supervisor": {
        "list": 200, "mine": 200, "theirs": 404, "evidence mine": 200, "evidence theirs": 404,
        "search": 200, "audit alert": 200, "audit mine": 200, "audit theirs": 404,
    },
    "case_officer": {
        "list": 200, "mine": 200, "theirs": 404, "evidence mine": 200, "evidence theirs": 404,
        "search": 403, "audit alert": 403, "audit mine": 403, "audit theirs": 403,
    },
    "citizen": {
        "list": 403, "mine": 200, "theirs": 404, "evidence mine": 404, "evidence theirs": 404,
        "search": 403, "audit alert": 403, "audit mine": 403, "audit theirs": 403,
    },
    "none": dict.fromkeys(ENDPOINTS, 401),
    "revoked": dict.fromkeys(ENDPOINTS, 401),
}  # fmt: skip
AUDITED = {
    "list": AuditAction.CASE_LISTED,
    "mine": AuditAction.CASE_VIEWED,
    "evidence mine": AuditAction.EVIDENCE_DOWNLOADED,
    "search": AuditAction.HISTORY_SEARCH,
    "audit alert": AuditAction.AUDIT_VIEWED,
    "audit mine": AuditAction.AUDIT_VIEWED,
}
NOT_FOUND = {"error": {"code": "not_found", "message": "no such case"}}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_every_role_against_every_endpoint(api: Api, caller: str, endpoint: str) -> None:
    method, path, kw = ENDPOINTS[endpoint]
    answer = call(api, caller, method, path, **kw)
    expected = EXPECTED[caller][endpoint]
    assert answer.status_code == expected, answer.text
    body = answer.json()
    if expected == 200:
        (record,) = api.audit.records  # the answer was audited, once
        assert record.action is AUDITED[endpoint] and record.actor != "gateway"
    else:
        assert api.audit.records == []  # refusals are not acts on the object
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    if expected == 401:
        words = "missing bearer token" if caller == "none" else "invalid token"
        assert body["error"]["message"] == words
    if expected == 404 and endpoint in ("mine", "theirs", "audit theirs"):
        assert body == NOT_FOUND  # the same whether it exists or not


@pytest.mark.parametrize("caller", [c for c in CALLERS if c not in ("none", "revoked")])
def test_someone_elses_case_is_a_404_identical_to_no_such_case(api: Api, caller: str) -> None:
    answers = [
        call(api, caller, "GET", f"/api/cases/{ref}") for ref in (THEIRS, NOWHERE, "nonsense")
    ]
    assert {a.status_code for a in answers} == {404}
    assert all(a.json() == NOT_FOUND for a in answers)
    assert len({(a.content, tuple(sorted(a.headers.items()))) for a in answers}) == 1


def test_staff_see_the_whole_case_without_the_citizens_secret(api: Api) -> None:
    body = call(api, "officer", "GET", f"/api/cases/{MINE}").json()
    assert body["case"]["case_ref"] == MINE and "secret_hash" not in body["case"]
    assert body["case"]["reporter"]["phone"] == "07700900001"
    assert [e["kind"] for e in body["timeline"]] == [
        "received",
        "officer_assigned",
        "alert_raised",
        "officer_attended",
    ]  # oldest first, staff entries and notes included
    assert body["timeline"][2]["staff_note"] == "hotlist hit on AB12CDE"
    assert body["links"] == [{"kind": "call", "id": f"CALL-{MINE}"}]
    assert [e["evidence_id"] for e in body["evidence"]] == [f"EV-{MINE}"]
    (record,) = api.audit.records
    assert (record.object_type, record.object_id, record.actor) == (
        AuditObject.CASE,
        MINE,
        "OFF-1",
    )
    assert record.origin == "testclient"


def test_a_citizen_sees_their_timeline_newest_first_and_nothing_for_staff(api: Api) -> None:
    body = call(api, "citizen", "GET", f"/api/cases/{MINE}").json()
    estimate = body.pop("next_contact")  # push/portal.py; its own tests say more
    assert estimate["earliest"] is None and "on your case since" in estimate["basis"]
    assert body.pop("pending") is False
    assert body == {
        "case_ref": MINE,
        "status": "under_investigation",
        "timeline": [
            {
                "at": "2026-11-24T22:00:00Z",
                "kind": "officer_attended",
                "text": "An officer visited",
            },
            {
                "at": "2026-11-24T21:35:00Z",
                "kind": "officer_assigned",
                "text": "An officer has been assigned",
            },
            {"at": "2026-11-24T21:30:00Z", "kind": "received", "text": "We received your report"},
        ],
    }


def test_case_lists_are_newest_first_and_narrowed_by_status(api: Api) -> None:
    api.http.portal.call(
        store_case, api.records, make_case("WM-2026-0000003", opened_at=NOW.replace(hour=23))
    )
    officer = call(api, "officer", "GET", "/api/cases").json()["cases"]
    assert [c["case_ref"] for c in officer] == ["WM-2026-0000003", MINE]
    assert all("secret_hash" not in c for c in officer)
    force = call(api, "supervisor", "GET", "/api/cases").json()["cases"]
    assert THEIRS not in [c["case_ref"] for c in force]  # another area
    closed = call(api, "officer", "GET", "/api/cases?status=closed")
    assert closed.status_code == 200 and closed.json() == {"cases": []}
    bad = call(api, "officer", "GET", "/api/cases?status=finished")
    assert (
        bad.status_code == 400 and "status must be one or more of" in bad.json()["error"]["message"]
    )


def test_a_case_named_in_an_officers_token_is_listed_and_opened(api: Api) -> None:
    CALLERS["given"] = token("officer", "OFF-5", cases=[THEIRS])
    try:
        listed = call(api, "given", "GET", "/api/cases").json()["cases"]
        assert [c["case_ref"] for c in listed] == [THEIRS]
        assert call(api, "given", "GET", f"/api/cases/{THEIRS}").status_code == 200
    finally:
        del CALLERS["given"]


def test_evidence_metadata_with_its_storage_location(api: Api) -> None:
    body = call(api, "case_officer", "GET", f"/api/evidence/EV-{MINE}").json()
    assert body["case_ref"] == MINE
    assert body["evidence"]["storage_uri"] == f"s3://evidence/EV-{MINE}.mp4"
    (record,) = api.audit.records
    assert (record.action, record.object_id, record.reference) == (
        AuditAction.EVIDENCE_DOWNLOADED,
        f"EV-{MINE}",
        MINE,
    )
    missing = call(api, "case_officer", "GET", "/api/evidence/EV-none")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_search_results_cases_and_the_audit_record_with_reason_and_reference(api: Api) -> None:
    answer = call(api, "rtic_analyst", "POST", "/api/search", json=SEARCH)
    body = answer.json()
    assert api.search.asked == [("person", "P-100")]
    assert body["results"]["calls"][0]["id"] == f"CALL-{MINE}"
    assert body["cases"] == [
        {"case_ref": MINE, "status": "under_investigation", "category": "burglary"}
    ]
    (record,) = api.audit.records
    assert body["audit_id"] == record.audit_id
    assert (record.action, record.object_type, record.object_id) == (
        AuditAction.HISTORY_SEARCH,
        AuditObject.PERSON,
        "P-100",
    )
    assert (record.reason, record.reference) == (SEARCH["reason"], SEARCH["reference"])
    assert record.detail["found"] == {"markers": 1, "calls": 1}
    assert record.detail["cases"] == [MINE]


def test_a_plate_search_is_audited_under_the_plate_as_registered(api: Api) -> None:
    call(
        api,
        "supervisor",
        "POST",
        "/api/search",
        json={**SEARCH, "subject": "plate", "value": "ab12 cde"},
    )
    (record,) = api.audit.records
    assert (record.object_type, record.object_id) == (AuditObject.PLATE, "AB12CDE")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({**SEARCH, "reason": None}, "'reason' is required"),
        ({k: v for k, v in SEARCH.items() if k != "reason"}, "'reason' is required"),
        ({**SEARCH, "reason": "   "}, "'reason' is required"),
        ({**SEARCH, "reason": "because"}, "'reason' must be at least 10 characters"),
        ({k: v for k, v in SEARCH.items() if k != "reference"}, "'reference' is required"),
        ({**SEARCH, "reference": "J1"}, "'reference' must be at least 3 characters"),
        ({**SEARCH, "reference": 7}, "'reference' must be text"),
        ({**SEARCH, "subject": "dog"}, "'subject' is required: plate, person or address"),
        ({**SEARCH, "value": ""}, "'value' is required"),
        ({**SEARCH, "value": "x" * 201}, "'value' must be at most 200 characters"),
        ([SEARCH], "the body must be a JSON object"),
    ],
)
def test_a_search_without_reason_or_reference_is_refused_naming_the_field(
    api: Api, body: Any, words: str
) -> None:
    answer = call(api, "rtic_analyst", "POST", "/api/search", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
    assert answer.json()["error"]["message"].startswith(words)
    assert api.search.asked == [] and api.audit.records == []


def test_a_search_body_that_is_not_json_is_a_400(api: Api) -> None:
    answer = call(api, "rtic_analyst", "POST", "/api/search", content=b"{reason")
    assert (
        answer.status_code == 400 and answer.json()["error"]["message"] == "the body must be JSON"
    )


def test_no_audit_no_answer(api: Api) -> None:
    api.audit.fail = True
    for caller, method, path, kw in (
        ("rtic_analyst", "POST", "/api/search", {"json": SEARCH}),
        ("officer", "GET", f"/api/cases/{MINE}", {}),
        ("officer", "GET", "/api/cases", {}),
        ("supervisor", "GET", "/api/audit?object_type=alert&object_id=a1", {}),
    ):
        answer = call(api, caller, method, path, **kw)
        assert answer.status_code == 503, path
        assert answer.json() == {
            "error": {"code": "audit_unavailable", "message": "the audit trail cannot be written"}
        }


def test_history_that_does_not_answer_is_a_503(api: Api) -> None:
    api.search.fail = True
    answer = call(api, "rtic_analyst", "POST", "/api/search", json=SEARCH)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "unavailable"
    assert api.audit.records == []


def test_without_a_database_the_api_says_so(api: Api) -> None:
    api.http.app.state.edge.records = None  # type: ignore[attr-defined]
    answer = call(api, "officer", "GET", "/api/cases")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "records_unavailable"


def test_an_audit_history_oldest_first_and_its_viewing_audited(api: Api) -> None:
    from push.audit import act_record
    from rtic.tokens import Principal

    who = Principal("an-1", Role.RTIC_ANALYST)
    older = act_record(who, AuditAction.ALERT_OPENED, AuditObject.ALERT, "a1", NOW)
    newer = act_record(who, AuditAction.ALERT_ACK, AuditObject.ALERT, "a1", NOW.replace(minute=45))
    api.http.portal.call(api.records.audit.append, [newer, older])
    body = call(api, "supervisor", "GET", "/api/audit?object_type=alert&object_id=a1").json()
    assert [r["action"] for r in body["records"]] == ["alert_opened", "alert_ack"]
    (viewed,) = api.audit.records
    assert (viewed.object_type, viewed.object_id, viewed.detail["count"]) == (
        AuditObject.AUDIT,
        "alert:a1",
        2,
    )
    for query, words in (
        ("object_id=a1", "'object_type' must be one of"),
        ("object_type=alert", "'object_id' is required"),
        ("object_type=planet&object_id=a1", "'object_type' must be one of"),
    ):
        bad = call(api, "supervisor", "GET", f"/api/audit?{query}")
        assert bad.status_code == 400 and bad.json()["error"]["message"].startswith(words)


# ---- the websocket: case updates by role, revoked tokens ----------------------------------


@pytest.mark.parametrize("caller", list(CALLERS))
def test_case_updates_over_the_websocket_by_role(api: Api, caller: str) -> None:
    bearer = CALLERS[caller]
    path = f"/ws?token={bearer}" if bearer else "/ws"
    if caller in ("none", "revoked"):
        with pytest.raises(WebSocketDenialResponse) as refused:
            with api.http.websocket_connect(path):
                pass
        assert refused.value.status_code == 401
        words = "missing bearer token" if caller == "none" else "invalid token"
        assert refused.value.json()["error"]["message"] == words
        return
    scope = CaseScope(MINE, "OFF-1", frozenset({"OFF-2", "co-1"}), frozenset({"E08000025"}))
    with api.http.websocket_connect(path) as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "subscribe"})
        assert ws.receive_json()["type"] == "subscribed"
        ws.portal.call(api.core.publish_case, update(case_ref=THEIRS), CaseScope(THEIRS, "OFF-9"))
        ws.portal.call(api.core.publish_case, update(update_id="u-mine"), scope)
        ws.send_json({"type": "ping"})
        frames = []
        while (got := ws.receive_json())["type"] != "pong":
            frames.append(got)
    sees = caller in ("officer", "supervisor", "case_officer", "citizen")
    assert [(f["type"], f["case_ref"]) for f in frames] == ([("case_update", MINE)] if sees else [])
    if caller == "citizen":
        assert "staff_note" not in str(frames) and "officer_in_charge" not in frames[0]


def test_an_open_socket_of_a_revoked_token_is_closed_invalid(api: Api) -> None:
    doomed = token("officer", "OFF-1", jti="soon-revoked")
    with api.http.websocket_connect(f"/ws?token={doomed}") as ws:
        ws.receive_json()
        ws.portal.call(revoke, api.records, "soon-revoked")
        ws.portal.call(api.revocations.refresh)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert (closed.value.code, closed.value.reason) == (1008, "invalid token")
    assert call(api, "officer", "GET", "/api/cases").status_code == 200  # OFF-1's other token
    again = api.http.get("/api/cases", headers={"Authorization": f"Bearer {doomed}"})
    assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_token"


def test_every_api_route_says_who_may_call_it(api: Api) -> None:
    from starlette.routing import Route

    access = {
        r.path: r.endpoint.access  # type: ignore[attr-defined]
        for r in api.http.app.router.routes  # type: ignore[attr-defined]
        if isinstance(r, Route) and r.path.startswith("/api/") and r.path != "/api/boundaries"
    }
    assert access == {
        "/api/config": "public",
        "/api/cases": frozenset({Role.OFFICER, Role.CASE_OFFICER, Role.SUPERVISOR}),
        "/api/cases/{case_ref}": frozenset(Role),
        "/api/evidence/{evidence_id}": frozenset(Role),
        "/api/search": frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR}),
        "/api/audit": frozenset({Role.SUPERVISOR, Role.RTIC_ANALYST}),
        "/api/desk/stats": frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR}),
        "/api/desk/priorities": frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR}),
        "/api/desk/trends": frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR}),
        "/api/incidents": frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR}),
        "/api/incidents/{incident_id}/candidates": frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR}),
        "/api/officers/workload": frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR}),
        "/api/cases/{case_ref}/evidence": frozenset(Role),  # upload and list: case people
        "/api/evidence/{evidence_id}/content": frozenset(Role),
        "/api/portal/evidence-rules": "public",
        "/api/portal/outcomes": "public",
        "/api/portal/reports": "public",
        "/api/portal/session": "public",
        "/api/session/ticket": "public",  # a login ticket is the credential
        "/api/cases/{case_ref}/statements": frozenset(Role),
        "/api/anpr/cameras": frozenset({Role.RTIC_ANALYST, Role.SUPERVISOR}),
    }


def test_a_supervisor_with_areas_reads_the_history_only_of_what_they_may_see(api: Api) -> None:
    """The evidence of a case in another area, or an incident not on their board, is 404
    to a supervisor whose token names areas, as the case itself is; one without areas
    reads every history."""
    everywhere = token("supervisor", "sup-all")
    for query, area_status, all_status in (
        (f"object_type=evidence&object_id=EV-{MINE}", 200, 200),
        (f"object_type=evidence&object_id=EV-{THEIRS}", 404, 200),
        ("object_type=evidence&object_id=EV-NONE", 404, 200),
        ("object_type=incident&object_id=INC-1", 404, 200),  # this app keeps no job board
        (f"object_type=case&object_id={THEIRS}", 404, 200),
    ):
        in_area = call(api, "supervisor", "GET", f"/api/audit?{query}")
        assert in_area.status_code == area_status, (query, in_area.text)
        if area_status == 404:
            assert in_area.json() == {"error": {"code": "not_found", "message": "no such case"}}
        anywhere = api.http.get(
            f"/api/audit?{query}", headers={"Authorization": f"Bearer {everywhere}"}
        )
        assert anywhere.status_code == all_status, (query, anywhere.text)
