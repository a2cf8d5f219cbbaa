"""The citizen portal from outside the process: the real gateway, case worker and worker
(``tests/engine.py``), over HTTP and the websocket.

Two people report online. Each gets a session for their own case only: whatever case
references and statement ids a citizen sends (in the URL, in ``subscribe``, in an
amendment), they never receive another case's updates or statements, and another
case answers 404. Staff see a case's statements as they may see the case. The rate
limits hold on the real gateway (each test speaks from its own address, given as
``X-Forwarded-For``, which uvicorn takes from a proxy on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import make_incident
from tests.engine import Engine

pytestmark = pytest.mark.e2e

_addresses = itertools.count(1)


def address() -> dict[str, str]:
    """A client address of its own (the rate limits are per address)."""
    n = next(_addresses)
    return {"X-Forwarded-For": f"10.13.{n // 250}.{n % 250 + 1}"}


def report_body(name: str, lat: float = 52.4862, lon: float = -1.8904) -> dict[str, Any]:
    return {
        "category": "burglary",
        "description": f"{name}'s shed was broken into overnight.",
        "location": {"lat": lat, "lon": lon, "address": f"{name}'s house"},
        "occurred_at": (datetime.now(UTC) - timedelta(hours=6)).isoformat(),
        "reporter": {"name": name, "email": f"{name.lower()}@example.org"},
    }


def statement_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "who_i_am": {"name": "A Witness", "relation": "witness"},
        "what_i_saw": "Someone climbing the fence.",
        "when": {"from": (datetime.now(UTC) - timedelta(hours=6)).isoformat()},
        "where": {"address": "The back garden"},
        "declaration": True,
    }
    body.update(overrides)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def citizen_socket(
    engine: Engine, token: str, cases: list[str]
) -> AsyncIterator[ClientConnection]:
    async with connect(engine.ws_url, additional_headers=bearer(token)) as ws:
        assert orjson.loads(await ws.recv())["type"] == "hello"
        await ws.send(orjson.dumps({"type": "subscribe", "cases": cases}).decode())
        reply = orjson.loads(await ws.recv())
        assert reply["type"] == "subscribed", reply
        yield ws


async def frames(ws: ClientConnection, into: list[dict[str, Any]]) -> None:
    async for raw in ws:
        into.append(orjson.loads(raw))


async def until(got: list[dict[str, Any]], kind: str, timeout: float = 30.0) -> None:
    """Until a frame with a timeline entry of ``kind`` is in ``got``."""
    async with asyncio.timeout(timeout):
        while not any(f.get("entry", {}).get("kind") == kind for f in got):  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def until_written(http: httpx.AsyncClient, ref: str, token: str) -> dict[str, Any]:
    """The citizen's view once the case worker has written the case."""
    async with asyncio.timeout(30):
        while True:
            view = await http.get(f"/api/cases/{ref}", headers=bearer(token))
            assert view.status_code == 200, view.text
            if not view.json()["pending"]:
                return dict(view.json())
            await asyncio.sleep(0.2)


async def test_a_citizen_session_sees_its_own_case_and_nothing_of_anothers(engine: Engine) -> None:
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=20) as http:
        reports = []
        for name in ("Alex", "Bo"):
            made = await http.post("/api/portal/reports", json=report_body(name), headers=address())
            assert made.status_code == 201, made.text
            reports.append(made.json())
        alex, bo = reports
        # A session from reference and secret: the same case, and only it.
        session = await http.post(
            "/api/portal/session",
            json={"case_ref": bo["case_ref"], "secret": bo["secret"].lower()},
            headers=address(),
        )
        assert session.status_code == 200
        bo_token = session.json()["token"]
        wrong = await http.post(
            "/api/portal/session",
            json={"case_ref": bo["case_ref"], "secret": alex["secret"]},
            headers=address(),
        )
        unknown = await http.post(
            "/api/portal/session",
            json={"case_ref": "WM-2026-9999998", "secret": bo["secret"]},
            headers=address(),
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()

        alex_view = await until_written(http, alex["case_ref"], alex["token"])
        bo_view = await until_written(http, bo["case_ref"], bo_token)
        assert alex_view["timeline"][-1]["text"] == "We have received your report made online."
        assert bo_view["next_contact"]["basis"]

        bo_frames: list[dict[str, Any]] = []
        alex_frames: list[dict[str, Any]] = []
        # Alex asks for Bo's case too: the gateway never sends it.
        async with (
            citizen_socket(engine, alex["token"], [alex["case_ref"], bo["case_ref"]]) as alex_ws,
            citizen_socket(engine, bo_token, [bo["case_ref"]]) as bo_ws,
        ):
            readers = [
                asyncio.create_task(frames(alex_ws, alex_frames)),
                asyncio.create_task(frames(bo_ws, bo_frames)),
            ]
            try:
                # An officer is assigned to Bo's report (an incident linked to its call).
                async with engine.producer() as producer:
                    incident = make_incident(
                        incident_id=f"INC-{bo['case_ref']}",
                        event="assigned",
                        at=datetime.now(UTC).isoformat(),
                        call_ids=[bo["call_id"]],
                        units=["OFF-PORTAL-1"],
                    )
                    await engine.send(
                        producer, engine.topics.incidents, incident["incident_id"], incident
                    )
                # Bo gives a statement; Alex tries to read, amend and write Bo's.
                given = await http.post(
                    f"/api/cases/{bo['case_ref']}/statements",
                    json=statement_body(),
                    headers={**bearer(bo_token), **address()},
                )
                assert given.status_code == 201, given.text
                sid = given.json()["statement_id"]
                for method, path, body in (
                    ("GET", f"/api/cases/{bo['case_ref']}", None),
                    ("GET", f"/api/cases/{bo['case_ref']}/statements", None),
                    ("POST", f"/api/cases/{bo['case_ref']}/statements", statement_body()),
                ):
                    answer = await http.request(
                        method, path, json=body, headers={**bearer(alex["token"]), **address()}
                    )
                    assert answer.status_code == 404, (method, path)
                amend = await http.post(
                    f"/api/cases/{alex['case_ref']}/statements",
                    json=statement_body(statement_id=sid),
                    headers={**bearer(alex["token"]), **address()},
                )
                assert amend.status_code == 404  # Bo's statement id is no id of Alex's case
                await until(bo_frames, "statement_taken")
                await until(bo_frames, "officer_assigned")
                await asyncio.sleep(1.0)  # time for a wrongly sent frame to arrive
            finally:
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
        updates = [f for f in alex_frames if f["type"] == "case_update"]
        assert all(f["case_ref"] == alex["case_ref"] for f in updates), updates
        assert not any(bo["case_ref"] in orjson.dumps(f).decode() for f in alex_frames)
        bo_updates = [f for f in bo_frames if f["type"] == "case_update"]
        assert {f["case_ref"] for f in bo_updates} == {bo["case_ref"]}
        # What the citizen's frames carry: no staff notes, no officer ids.
        assert "OFF-PORTAL-1" not in orjson.dumps(bo_frames).decode()
        bo_view = (await http.get(f"/api/cases/{bo['case_ref']}", headers=bearer(bo_token))).json()
        assert {"officer_assigned", "statement_taken"} <= {e["kind"] for e in bo_view["timeline"]}
        assert bo_view["next_contact"]["earliest"] is None  # an officer is on it now

        # Staff: the officer assigned reads Bo's statements; others get 404.
        officer = engine.token("officer", "OFF-PORTAL-1")
        listed = await http.get(f"/api/cases/{bo['case_ref']}/statements", headers=bearer(officer))
        assert listed.status_code == 200
        assert [s["statement_id"] for s in listed.json()["statements"]] == [sid]
        for role, sub in (
            ("officer", "OFF-PORTAL-9"),
            ("rtic_analyst", "an-p"),
            ("contact_handler", "ch-p"),
        ):
            answer = await http.get(
                f"/api/cases/{bo['case_ref']}/statements", headers=bearer(engine.token(role, sub))
            )
            assert answer.status_code == 404, role


async def test_the_rate_limits_hold_on_the_real_gateway(engine: Engine) -> None:
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=20) as http:
        me = address()
        codes = []
        for _ in range(11):
            answer = await http.post(
                "/api/portal/session",
                json={"case_ref": "WM-2026-9999997", "secret": "AAAA-AAAA-AAAA-AAAA"},
                headers=me,
            )
            codes.append(answer.status_code)
        assert codes == [401] * 10 + [429]
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.json()["error"]["code"] == "rate_limited"
        other = await http.post(
            "/api/portal/session",
            json={"case_ref": "WM-2026-9999997", "secret": "AAAA-AAAA-AAAA-AAAA"},
            headers=address(),
        )
        assert other.status_code == 401  # another address has its own bucket
