"""Who can see what: the authorisation matrix, run from outside the process.

The real engine (``tests/engine.py``: worker, case worker and gateway as subprocesses
on Tansu, Redis and a database) is seeded through its own doors: two citizens report
online (case A in Birmingham, case B in Coventry), citizen A uploads a file, gives a
statement and starts a webchat that a contact handler takes; alerts near one officer,
one for case officers and one naming another officer go onto ``rtic.alerts.v1``; a job
is given to the near officer. Then every principal below sends every websocket message
type (``rtic.client_messages.MODELS``) and calls every HTTP endpoint (the routes of the
Starlette app of ``push/web.py``, matched route by route: a route no row reaches fails
the test), and what each one receives is compared with the tables below.

Three tables, each ``target | one column per principal``, readable and easy to amend:

- ``HTTP``: the status of each request (``:A``, ``:AB``, ``:-``... name which of the
  seeded cases, incidents or officers a list shows; ``:counts`` / ``:bare`` whether
  ``/healthz`` gives counts). A bad token (expired, revoked, forged, ``alg: none``,
  altered claims, unknown role) must get what no token gets (``BAD_TOKENS`` says the
  401 code each one is told).
- ``WS``: the reply frame to each message (``error:<code>`` for an error frame), and
  the handshake (101, or the HTTP status it is refused with).
- ``ARRIVES``: what arrives unasked on each principal's socket (``yes`` / ``no``).

On top, a leak scan: every HTTP body and every frame a principal gets is searched for
the markers of things they may not see (another case's statements, files, chat and
reporter; alerts not for them); a marker they sent themselves does not count.

Cells that wait for fixes on other branches (they fail here until those merge):
``gateway-auth`` (``ack`` or ``open`` of an alert one may not see, or of an unknown id,
answers ``not_found``; an officer's scope is bound to their own pings and their token's
areas, so ``off_liar_at``, who pings in Coventry and subscribes with a Birmingham
position, and ``off_liar_area``, whose token names Coventry and who subscribes to
Birmingham's area, get nothing near Birmingham) and ``edge``
(``/healthz`` gives its counts to analysts and supervisors only). The outcome table is
written to ``artifacts/authz-matrix.md``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from push.access import snooze_id
from push.fanout import Fanout
from push.web import create_app
from rtic.client_messages import MODELS
from rtic.settings import PROJECT_ROOT
from rtic.tokens import issue_token
from tests.conftest import BIRMINGHAM_CENTRE, COVENTRY_CENTRE, make_incident
from tests.engine import Engine

pytestmark = pytest.mark.e2e

BIRMINGHAM, COVENTRY = "E08000025", "E08000026"
NEAR = BIRMINGHAM_CENTRE
NEAR_OFFICER_AT = (52.4870, -1.8890)  # about 100 m from the alerts
FAR_OFFICER_AT = COVENTRY_CENTRE  # about 26 km away
ARTIFACT = PROJECT_ROOT / "artifacts" / "authz-matrix.md"

# ---- the expectations ------------------------------------------------------------------
#
# Principals: analyst (rtic_analyst); sup_area (supervisor, token areas: Coventry);
# sup_all (supervisor, no areas); off_near / off_far (officers whose devices ping near
# the alerts / in Coventry); off_liar_at and off_liar_area (ping in Coventry, subscribe
# with a Birmingham position / to Birmingham's area, their token naming Coventry:
# websocket only); case_off (case officer, token names case A); handler and
# handler2 (contact handlers; handler takes A's chat; handler2 only on the websocket);
# cit_a / cit_b (citizens of A and B, tokens from the portal); anon (no token).

HTTP = """
target                                   | analyst  | sup_area | sup_all  | off_near | off_far  | case_off | handler  | cit_a    | cit_b    | anon
GET /                                    | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /rtic                                | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /index.html                          | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /cases                               | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /officer                             | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /officer-sw.js                       | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /portal                              | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /handler                             | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /static/rtic.css                     | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /api/boundaries?level=district       | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /api/config                          | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /healthz                             | 200:counts | 200:counts | 200:counts | 200:bare | 200:bare | 200:bare | 200:bare | 200:bare | 200:bare | 200:bare
GET /metrics                             | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /api/portal/evidence-rules           | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
GET /api/portal/outcomes                 | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200      | 200
POST /api/portal/reports (invalid body)  | 400      | 400      | 400      | 400      | 400      | 400      | 400      | 400      | 400      | 400
POST /api/portal/session (wrong secret)  | 401      | 401      | 401      | 401      | 401      | 401      | 401      | 401      | 401      | 401
POST /api/session/ticket (unknown)       | 401      | 401      | 401      | 401      | 401      | 401      | 401      | 401      | 401      | 401
GET /api/cases                           | 403      | 200:B    | 200:AB   | 200:-    | 200:-    | 200:A    | 403      | 403      | 403      | 401
GET /api/cases/{A}                       | 404      | 404      | 200      | 404      | 404      | 200      | 404      | 200      | 404      | 401
GET /api/cases/{B}                       | 404      | 200      | 200      | 404      | 404      | 404      | 404      | 404      | 200      | 401
GET /api/cases/{A}/statements            | 404      | 404      | 200      | 404      | 404      | 200      | 404      | 200      | 404      | 401
POST /api/cases/{A}/statements           | 404      | 404      | 201      | 404      | 404      | 201      | 404      | 201      | 404      | 401
GET /api/cases/{A}/evidence              | 404      | 404      | 200      | 404      | 404      | 200      | 404      | 200      | 404      | 401
POST /api/cases/{A}/evidence             | 404      | 404      | 201      | 404      | 404      | 201      | 404      | 201      | 404      | 401
GET /api/evidence/{EV_A}                 | 404      | 404      | 200      | 404      | 404      | 200      | 404      | 404      | 404      | 401
GET /api/evidence/{EV_STAFF}/content     | 404      | 404      | 200      | 404      | 404      | 200      | 404      | 404      | 404      | 401
GET /api/evidence/{EV_A}/content         | 404      | 404      | 200      | 404      | 404      | 200      | 404      | 200      | 404      | 401
POST /api/search                         | 200      | 200      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/audit (case A)                  | 403      | 404      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/audit (evidence of A)           | 403      | 404      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/audit (incident of A)           | 403      | 404      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/audit (alert near)              | 200      | 200      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/anpr/cameras                    | 200      | 200      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/incidents                       | 200:AB   | 200:B    | 200:AB   | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/incidents/{INC_A}/candidates    | 200      | 404      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/incidents/{INC_B}/candidates    | 200:NF   | 200:F    | 200:NF   | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/officers/workload               | 200:NF   | 200:F    | 200:NF   | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/desk/stats                      | 200      | 200      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/desk/priorities                 | 200      | 200      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
GET /api/desk/trends                     | 200      | 200      | 200      | 403      | 403      | 403      | 403      | 403      | 403      | 401
"""

# What each bad token is told (it gets what ``anon`` gets, with this code on a 401).
BAD_TOKENS = {
    "expired": "token_expired",
    "revoked": "invalid_token",
    "forged": "invalid_token",
    "alg_none": "invalid_token",
    "altered": "invalid_token",
    "bad_role": "invalid_token",
}
ANON_CODE = "missing_token"

WS = """
target                      | analyst         | sup_area        | sup_all         | off_near        | off_far         | off_liar_at     | off_liar_area   | case_off        | handler         | handler2        | cit_a           | cit_b
handshake /ws               | 101             | 101             | 101             | 101             | 101             | 101             | 101             | 101             | 101             | 101             | 101             | 101
handshake /elsewhere        | 404             | 404             | 404             | 404             | 404             | 404             | 404             | 404             | 404             | 404             | 404             | 404
subscribe                   | subscribed      | subscribed      | subscribed      | subscribed      | subscribed      | subscribed      | subscribed      | subscribed      | subscribed      | subscribed      | subscribed      | subscribed
position                    | error:forbidden | error:forbidden | error:forbidden | position_ack    | position_ack    | position_ack    | position_ack    | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden
ping                        | pong            | pong            | pong            | pong            | pong            | pong            | pong            | pong            | pong            | pong            | pong            | pong
resume                      | resumed         | resumed         | resumed         | resumed         | resumed         | resumed         | resumed         | resumed         | resumed         | resumed         | resumed         | resumed
ack (alert near)            | acked           | acked           | acked           | acked           | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:bad_ack   | error:bad_ack
ack (unknown id)            | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:bad_ack   | error:bad_ack
open (alert near)           | opened          | opened          | opened          | opened          | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:forbidden | error:forbidden
snooze                      | snoozed         | snoozed         | snoozed         | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden
unsnooze                    | unsnoozed       | unsnoozed       | unsnoozed       | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden
verify (a check near)       | verify_ack      | verify_ack      | verify_ack      | verify_ack      | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found | error:not_found
job_update (off_near's job) | error:forbidden | error:forbidden | error:forbidden | job_update_ack  | error:not_found | error:not_found | error:not_found | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden
assign (job near)           | assigned        | error:not_found | assigned        | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden
chat_open (no case)         | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | chat_queue      | chat_queue      | chat_opened     | chat_opened
chat_open (case A)          | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | chat_opened     | error:not_found | chat_opened     | error:not_found
chat (case A)               | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | chat_accepted   | error:not_found | chat_accepted   | error:not_found
chat_take (case A)          | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | chat_taken      | error:taken     | error:forbidden | error:forbidden
chat_to_call (case A)       | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | chat_calling    | error:not_found | error:forbidden | error:forbidden
chat_close (case A)         | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | error:forbidden | chat_closed     | error:not_found | error:forbidden | error:forbidden
"""

ARRIVES = """
what arrives                  | analyst | sup_area | sup_all | off_near | off_far | off_liar_at | off_liar_area | case_off | handler | handler2 | cit_a | cit_b
alert near off_near           | yes     | yes      | yes     | yes      | no      | no          | no            | no       | no      | no       | no    | no
alert for case officers       | yes     | yes      | yes     | no       | no      | no          | no            | yes      | no      | no       | no    | no
alert naming off_far          | yes     | yes      | yes     | no       | yes     | no          | no            | no       | no      | no       | no    | no
plate checks near off_near    | yes     | yes      | yes     | yes      | no      | no          | no            | no       | no      | no       | no    | no
verification frames           | yes     | yes      | yes     | yes      | no      | no          | no            | no       | no      | no       | no    | no
alert_ack frames              | yes     | yes      | yes     | no       | no      | no          | no            | no       | no      | no       | no    | no
case_update of A              | no      | no       | yes     | no       | no      | no          | no            | yes      | no      | no       | yes   | no
case_update of B              | no      | yes      | yes     | no       | no      | no          | no            | no       | no      | no       | no    | yes
chat of case A                | no      | no       | no      | no       | no      | no          | no            | no       | yes     | no       | yes   | no
live events                   | yes     | yes      | yes     | no       | no      | no          | no            | no       | no      | no       | no    | no
off_near's pings (feed)       | yes     | no       | yes     | no       | no      | no          | no            | no       | no      | no       | no    | no
off_near on the officer board | yes     | no       | yes     | no       | no      | no          | no            | no       | no      | no       | no    | no
incident of A on the board    | yes     | no       | yes     | no       | no      | no          | no            | no       | no      | no       | no    | no
off_near's job                | yes     | no       | yes     | yes      | no      | no          | no            | no       | no      | no       | no    | no
"""

# The websocket messages sent after the chat is taken and before its call and close.
LAST_WS = ("chat_to_call (case A)", "chat_close (case A)")
FIRST_WS = ("handshake /ws", "handshake /elsewhere", "subscribe", "position")


def parse_table(text: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """A table above: its principals, and row -> principal -> cell."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    head = [c.strip() for c in lines[0].split("|")]
    principals = head[1:]
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.split("|")]
        assert len(cells) == len(head), f"row {cells[0]!r} has {len(cells)} cells"
        assert cells[0] not in rows, f"row {cells[0]!r} twice"
        rows[cells[0]] = dict(zip(principals, cells[1:], strict=True))
    return principals, rows


# ---- principals and tokens -------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def bad_tokens(engine: Engine, cit_b_token: str, revoked: str, case_a: str) -> dict[str, str]:
    """The hostile tokens: expired, revoked, forged, ``alg: none``, altered, unknown role."""
    secret = engine.settings.token_secret.get_secret_value()
    kid = engine.settings.token_key_id
    now = datetime.now(UTC)
    expired = issue_token(
        secret, sub="AN-EXPIRED", role="rtic_analyst", now=now - timedelta(hours=2), ttl_seconds=60
    )
    forged = issue_token(
        "not-the-engine-secret-" + "x" * 32, sub="SUP-FORGED", role="supervisor", now=now,
        ttl_seconds=600,
    )  # fmt: skip
    good = _claims(engine.token("supervisor", "SUP-NONE"))
    header = _b64(orjson.dumps({"alg": "none", "typ": "JWT", "kid": kid}))
    alg_none = f"{header}.{_b64(orjson.dumps(good))}."
    head, _, signature = cit_b_token.split(".")
    widened = {**_claims(cit_b_token), "cases": [case_a]}
    altered = f"{head}.{_b64(orjson.dumps(widened))}.{signature}"
    with warnings.catch_warnings():  # the tests' secret is shorter than PyJWT likes
        warnings.simplefilter("ignore")
        bad_role = jwt.encode(
            {**_claims(engine.token("rtic_analyst", "AN-ROLE")), "role": "superuser"},
            secret,
            algorithm="HS256",
            headers={"kid": kid},
        )
    return {
        "expired": expired,
        "revoked": revoked,
        "forged": forged,
        "alg_none": alg_none,
        "altered": altered,
        "bad_role": bad_role,
    }


def revoke(engine: Engine, jti: str) -> None:
    """``rtic token revoke --jti``, the operator's command, on the engine's database."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "token", "revoke", "--jti", jti, "--reason", "matrix"],
        env=engine.env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


# ---- seeding ---------------------------------------------------------------------------

_addresses = itertools.count(1)


def address() -> dict[str, str]:
    """A client address of its own: the portal's rate limits are per address."""
    n = next(_addresses)
    return {"X-Forwarded-For": f"10.14.{n // 250}.{n % 250 + 1}"}


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def report_body(name: str, email: str, at: tuple[float, float]) -> dict[str, Any]:
    return {
        "category": "burglary",
        "description": f"{name}'s shed was broken into overnight.",
        "location": {"lat": at[0], "lon": at[1], "address": f"{name}'s house"},
        "occurred_at": (datetime.now(UTC) - timedelta(hours=6)).isoformat(),
        "reporter": {"name": name, "email": email},
    }


def statement_body(text: str) -> dict[str, Any]:
    return {
        "who_i_am": {"name": "A Witness", "relation": "witness"},
        "what_i_saw": text,
        "when": {"from": (datetime.now(UTC) - timedelta(hours=6)).isoformat()},
        "where": {"address": "The back garden"},
        "declaration": True,
    }


def alert(
    alert_id: str, *, roles: list[str], officers: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "alert_id": alert_id,
        "rule_id": extra.pop("rule_id", "authz_matrix_probe"),
        "severity": "medium",
        "title": "Authorisation matrix probe",
        "summary": "A probe of who receives what",
        "created_at": now,
        "source_event_ids": [],
        "location": {"lat": NEAR[0], "lon": NEAR[1]},
        "area": [BIRMINGHAM],
        "audience": {"roles": roles, "areas": [], "officers": list(officers)},
        "version": 1,
        **extra,
    }


@dataclass
class Seed:
    """What the matrix is about: ids, and the markers of what only some may see."""

    nonce: str
    a: str = ""
    b: str = ""
    ev_a: str = ""  # a file citizen A gave
    ev_staff: str = ""  # a file the case officer gave (citizens do not see it)
    inc_job: str = ""
    near_alert: str = ""
    co_alert: str = ""
    named_alert: str = ""
    checks: dict[str, str] = field(default_factory=dict)  # principal -> its plate check
    subs: dict[str, str] = field(default_factory=dict)  # principal -> token subject
    vrm: str = ""
    # marker -> the principals who may see it
    markers: dict[str, frozenset[str]] = field(default_factory=dict)

    def fill(self, text: str) -> str:
        return (
            text.replace("{A}", self.a)
            .replace("{B}", self.b)
            .replace("{EV_A}", self.ev_a)
            .replace("{EV_STAFF}", self.ev_staff)
            .replace("{INC_A}", f"INC-{self.a}")
            .replace("{INC_B}", f"INC-{self.b}")
        )


# ---- sockets ---------------------------------------------------------------------------


@dataclass
class Socket:
    """One principal's websocket: every frame it got, and which were replies to what."""

    who: str
    ws: ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    replies: dict[int, str] = field(default_factory=dict)  # frame index -> what it answers
    closed: tuple[int, str] | None = None

    async def read(self) -> None:
        try:
            async for data in self.ws:
                text = data if isinstance(data, str) else data.decode()
                self.raw.append(text)
                self.frames.append(orjson.loads(text))
        except ConnectionClosed:
            pass
        if self.ws.close_code is not None:
            self.closed = (self.ws.close_code, self.ws.close_reason or "")

    async def ask(self, message: dict[str, Any], timeout: float = 15.0) -> str:
        """Send a message; its reply's type (``error:<code>`` for an error frame)."""
        start = len(self.frames)
        expected = REPLIES[message["type"]]
        sent = orjson.dumps(message).decode()
        await self.ws.send(sent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(start, len(self.frames)):
                f = self.frames[i]
                if i not in self.replies and (
                    f.get("type") in expected or f.get("type") == "error"
                ):
                    self.replies[i] = sent
                    return f"error:{f.get('code')}" if f["type"] == "error" else str(f["type"])
            if self.closed:
                return f"closed:{self.closed[0]}"
            await asyncio.sleep(0.02)
        return "no reply"

    async def until(self, test: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not any(test(f) for f in self.frames):  # noqa: ASYNC110
                await asyncio.sleep(0.05)


REPLIES = {
    "ping": {"pong"},
    "subscribe": {"subscribed"},
    "resume": {"resumed"},
    "ack": {"acked"},
    "open": {"opened"},
    "snooze": {"snoozed"},
    "unsnooze": {"unsnoozed"},
    "verify": {"verify_ack"},
    "job_update": {"job_update_ack"},
    "assign": {"assigned"},
    "position": {"position_ack"},
    "chat_open": {"chat_opened", "chat_queue"},
    "chat": {"chat_accepted"},
    "chat_take": {"chat_taken"},
    "chat_to_call": {"chat_calling"},
    "chat_close": {"chat_closed"},
}


async def handshake(engine: Engine, path: str, token: str | None) -> tuple[str, str | None]:
    """A websocket handshake's outcome (101, or the status it was refused with) and the
    refusal's error code."""
    url = engine.ws_url.removesuffix("/ws") + path
    try:
        headers = {**bearer(token), **address()}
        async with connect(url, additional_headers=headers, open_timeout=10):
            return "101", None
    except InvalidStatus as exc:
        body = exc.response.body or b""
        try:
            code = orjson.loads(body)["error"]["code"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            code = None
        return str(exc.response.status_code), code


def ws_messages(seed: Seed, who: str) -> dict[str, dict[str, Any]]:
    """The message each WS row sends, for this principal."""
    now = datetime.now(UTC).isoformat()
    spot = {
        "off_near": NEAR_OFFICER_AT,
        "off_far": FAR_OFFICER_AT,
        "off_liar_at": FAR_OFFICER_AT,
        "off_liar_area": FAR_OFFICER_AT,
    }.get(who, NEAR_OFFICER_AT)
    unique = f"{who}-{seed.nonce}"
    return {
        "position": {"type": "position", "lat": spot[0], "lon": spot[1], "at": now,
                     "status": "available"},
        "ping": {"type": "ping"},
        "resume": {"type": "resume", "since": "2020-01-01T00:00:00+00:00"},
        "ack (alert near)": {"type": "ack", "alert_id": seed.near_alert},
        "ack (unknown id)": {"type": "ack", "alert_id": f"no-such-alert-{unique}"},
        "open (alert near)": {"type": "open", "alert_id": seed.near_alert},
        "snooze": {"type": "snooze", "vrm": seed.vrm, "minutes": 1, "reason": "matrix"},
        "unsnooze": {"type": "unsnooze", "snooze_id": snooze_id(None, None, seed.vrm)},
        "verify (a check near)": {"type": "verify", "alert_id": seed.checks[who],
                                  "outcome": "not_a_match"},
        "job_update (off_near's job)": {"type": "job_update", "update_id": f"upd-{unique}",
                                        "incident_id": seed.inc_job, "event": "en_route",
                                        "at": now},
        "assign (job near)": {"type": "assign", "assign_id": f"asg-{unique}",
                              "incident_id": seed.inc_job, "officer_id": seed.subs["off_near"]},
        "chat_open (no case)": {"type": "chat_open"},
        "chat_open (case A)": {"type": "chat_open", "case_ref": seed.a},
        "chat (case A)": {"type": "chat", "message_id": f"msg-{unique}", "case_ref": seed.a,
                          "text": f"CHAT-{unique}"},
        "chat_take (case A)": {"type": "chat_take", "case_ref": seed.a},
        "chat_to_call (case A)": {"type": "chat_to_call", "case_ref": seed.a,
                                  "category": "theft"},
        "chat_close (case A)": {"type": "chat_close", "case_ref": seed.a},
    }  # fmt: skip


# ---- HTTP ------------------------------------------------------------------------------


@dataclass
class Req:
    method: str
    path: str
    json: Any = None
    multipart: tuple[dict[str, Any], dict[str, str]] | None = None
    view: Callable[[Any], str] | None = None  # the ":..." suffix of a 2xx answer


def _has(text: str, marks: dict[str, str]) -> str:
    found = "".join(letter for letter, mark in marks.items() if mark in text)
    return found or "-"


def http_requests(seed: Seed, who: str) -> dict[str, Req]:
    """The request each HTTP row makes, for this principal."""
    cases = {"A": seed.a, "B": seed.b}
    incidents = {"A": f"INC-{seed.a}", "B": f"INC-{seed.b}"}
    officers = {"N": seed.subs["off_near"], "F": seed.subs["off_far"]}
    unique = f"{who}-{seed.nonce}"
    upload = (
        {"file": ("notes.txt", f"FILEBY-{unique}\n".encode(), "text/plain")},
        {"description": f"EVD-{unique}"},
    )
    reqs = {}
    for row in parse_table(HTTP)[1]:
        method, _, rest = row.partition(" ")
        path = seed.fill(rest.split(" (")[0])
        reqs[row] = Req(method, path)
    reqs["GET /healthz"].view = lambda body: "counts" if '"clients"' in body else "bare"
    reqs["GET /api/cases"].view = lambda body: _has(body, cases)
    reqs["GET /api/incidents"].view = lambda body: _has(body, incidents)
    reqs["GET /api/incidents/{INC_B}/candidates"].path += "?limit=50"
    reqs["GET /api/incidents/{INC_B}/candidates"].view = lambda body: _has(body, officers)
    reqs["GET /api/officers/workload"].view = lambda body: _has(body, officers)
    reqs["POST /api/portal/reports (invalid body)"].json = {"category": "burglary"}
    reqs["POST /api/portal/session (wrong secret)"].json = {
        "case_ref": seed.a,
        "secret": "AAAA-AAAA-AAAA-AAAA",
    }
    reqs["POST /api/session/ticket (unknown)"].json = {"ticket": "no-such-ticket-" + seed.nonce}
    reqs["POST /api/cases/{A}/statements"].json = statement_body(f"STMT-{unique}")
    reqs["POST /api/cases/{A}/evidence"].multipart = upload
    reqs["POST /api/search"].json = {
        "subject": "plate",
        "value": seed.vrm,
        "reason": "the authorisation matrix asks",
        "reference": "MATRIX-1",
    }
    audits = {
        "case A": ("case", seed.a),
        "evidence of A": ("evidence", seed.ev_a),
        "incident of A": ("incident", f"INC-{seed.a}"),
        "alert near": ("alert", seed.near_alert),
    }
    for label, (kind, object_id) in audits.items():
        reqs[
            f"GET /api/audit ({label})"
        ].path = f"/api/audit?object_type={kind}&object_id={object_id}"
    return reqs


async def call(http: httpx.AsyncClient, req: Req, token: str | None) -> tuple[str, str, str]:
    """The outcome (status and view), the error code, and the body as text."""
    headers = {**bearer(token), **address()}
    if req.multipart is not None:
        files, data = req.multipart
        answer = await http.request(req.method, req.path, files=files, data=data, headers=headers)
    else:
        answer = await http.request(req.method, req.path, json=req.json, headers=headers)
    text = answer.content.decode("utf-8", "replace")
    outcome = str(answer.status_code)
    if req.view is not None and 200 <= answer.status_code < 300:
        outcome += ":" + req.view(text)
    code = ""
    if answer.headers.get("content-type", "").startswith("application/json"):
        with contextlib.suppress(Exception):
            code = str(answer.json()["error"]["code"])
    return outcome, code, text


# ---- the routes --------------------------------------------------------------------------


def app_routes() -> list[BaseRoute]:
    """The routes of the gateway's Starlette app, as ``push.web.create_app`` builds it."""

    class NoSink:
        def ack(self, ack: Any) -> None: ...
        def reference(self, change: Any) -> None: ...
        async def settled(self) -> None: ...

    app = create_app(
        Fanout(sink=NoSink()),
        secret="x" * 32,
        data_dir=PROJECT_ROOT / "data",
        consuming=lambda: True,
    )
    return list(app.routes)


def route_keys(routes: list[BaseRoute]) -> set[str]:
    """One key per route and method (``WS /ws``, ``GET /api/cases``, ``MOUNT /static``)."""
    keys = set()
    for route in routes:
        if isinstance(route, WebSocketRoute):
            keys.add(f"WS {route.path}")
        elif isinstance(route, Mount):
            keys.add(f"MOUNT {route.path}")
        elif isinstance(route, Route):
            keys.update(f"{m} {route.path}" for m in (route.methods or set()) - {"HEAD"})
    return keys


def reached(routes: list[BaseRoute], kind: str, method: str, path: str) -> str:
    """The key of the route a request would be dispatched to (the first full match)."""
    scope = {
        "type": "websocket" if kind == "WS" else "http",
        "path": path.split("?")[0],
        "method": method,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            if isinstance(route, WebSocketRoute):
                return f"WS {route.path}"
            if isinstance(route, Mount):
                return f"MOUNT {route.path}"
            return f"{method} {route.path}"  # type: ignore[attr-defined]
    return "no route"


# ---- the test ------------------------------------------------------------------------------

VALID_HTTP = ("analyst", "sup_area", "sup_all", "off_near", "off_far", "case_off", "handler",
              "cit_a", "cit_b")  # fmt: skip
WS_PRINCIPALS = ("analyst", "sup_area", "sup_all", "off_near", "off_far", "off_liar_at",
                 "off_liar_area", "case_off", "handler", "handler2", "cit_a", "cit_b")  # fmt: skip
WRITERS_OF_A = frozenset({"sup_all", "case_off", "cit_a"})  # statements and files on A
AUTH_CODES = frozenset({"missing_token", "token_expired", "invalid_token"})
OFFICERS = ("off_near", "off_far", "off_liar_at", "off_liar_area")
SUBSCRIBE_AT = {"off_near": NEAR_OFFICER_AT, "off_far": FAR_OFFICER_AT, "off_liar_at": NEAR}


async def test_who_can_see_what(engine: Engine) -> None:
    started = time.monotonic()
    nonce = uuid.uuid4().hex[:8].upper()
    seed = Seed(nonce=nonce, vrm=f"MX{nonce[:5]}")
    seed.near_alert = f"mx-near-{nonce}"
    seed.co_alert = f"mx-co-{nonce}"
    seed.named_alert = f"mx-named-{nonce}"
    seed.inc_job = f"INC-MX-{nonce}"
    seed.checks = {name: f"mx-check-{name}-{nonce}" for name in WS_PRINCIPALS}
    http_principals, http_expected = parse_table(HTTP)
    ws_principals, ws_expected = parse_table(WS)
    arrive_principals, arrive_expected = parse_table(ARRIVES)
    assert tuple(ws_principals) == tuple(arrive_principals) == WS_PRINCIPALS
    assert tuple(http_principals) == (*VALID_HTTP, "anon")

    async with httpx.AsyncClient(base_url=engine.base_url, timeout=30) as http:
        # ---- seed: two reports, their cases written -----------------------------------------
        reports = {}
        for key, name, at in (("a", "Ada", NEAR), ("b", "Bram", COVENTRY_CENTRE)):
            email = f"{name.lower()}.{nonce.lower()}@example.org"
            made = await http.post(
                "/api/portal/reports", json=report_body(name, email, at), headers=address()
            )
            assert made.status_code == 201, made.text
            reports[key] = made.json()
            seed.markers[email] = frozenset(
                {"sup_all", "case_off", "cit_a"} if key == "a" else {"sup_all", "sup_area", "cit_b"}
            )
        seed.a, seed.b = reports["a"]["case_ref"], reports["b"]["case_ref"]
        seed.markers[reports["a"]["secret"]] = frozenset()
        seed.markers[reports["b"]["secret"]] = frozenset()
        tokens: dict[str, str | None] = {
            "cit_a": reports["a"]["token"],
            "cit_b": reports["b"]["token"],
        }
        roles = {
            "analyst": ("rtic_analyst", {}),
            "sup_area": ("supervisor", {"areas": [COVENTRY]}),
            "sup_all": ("supervisor", {}),
            "off_near": ("officer", {}),
            "off_far": ("officer", {}),
            "off_liar_at": ("officer", {}),
            "off_liar_area": ("officer", {"areas": [COVENTRY]}),
            "case_off": ("case_officer", {"cases": [seed.a]}),
            "handler": ("contact_handler", {}),
            "handler2": ("contact_handler", {}),
        }
        for name, (role, kw) in roles.items():
            seed.subs[name] = f"MX-{name.upper().replace('_', '-')}-{nonce}"
            tokens[name] = engine.token(role, seed.subs[name], **kw)
        tokens["anon"] = None
        revoked_jti = uuid.uuid4().hex
        revoked_sub = f"MX-SUP-REVOKED-{nonce}"
        revoked_token = issue_token(
            engine.settings.token_secret.get_secret_value(),
            sub=revoked_sub,
            role="supervisor",
            now=datetime.now(UTC),
            ttl_seconds=3600,
            jti=revoked_jti,
        )
        bad = bad_tokens(engine, reports["b"]["token"], revoked_token, seed.a)
        async with asyncio.timeout(30):
            for key in ("a", "b"):
                while True:
                    view = await http.get(
                        f"/api/cases/{reports[key]['case_ref']}",
                        headers=bearer(reports[key]["token"]),
                    )
                    assert view.status_code == 200, view.text
                    if not view.json()["pending"]:
                        break
                    await asyncio.sleep(0.2)

        # ---- sockets: every principal subscribes (asking for both cases and the feed) ------
        sockets: dict[str, Socket] = {}
        readers: list[asyncio.Task[None]] = []
        ws_seen: dict[str, dict[str, str]] = {p: {} for p in WS_PRINCIPALS}
        async with contextlib.AsyncExitStack() as stack:

            async def open_socket(name: str, token: str) -> Socket:
                headers = {**bearer(token), **address()}
                ws = await stack.enter_async_context(
                    connect(engine.ws_url, additional_headers=headers, open_timeout=15)
                )
                sock = Socket(name, ws)
                readers.append(asyncio.create_task(sock.read()))
                await sock.until(lambda f: f.get("type") == "hello", 10)
                return sock

            async def join(name: str) -> None:
                sockets[name] = await open_socket(name, tokens[name] or "")
                ws_seen[name]["handshake /ws"] = "101"

            async def subscribe(name: str) -> None:
                message: dict[str, Any] = {"type": "subscribe", "events": True,
                                           "cases": [seed.a, seed.b]}  # fmt: skip
                if name in SUBSCRIBE_AT:
                    lat, lon = SUBSCRIBE_AT[name]
                    message["position"] = {"lat": lat, "lon": lon}
                    message["radius_m"] = 5000.0
                if name == "off_liar_area":
                    message["areas"] = [BIRMINGHAM]  # their token names Coventry
                ws_seen[name]["subscribe"] = await sockets[name].ask(message)

            async def position(name: str) -> None:
                message = ws_messages(seed, name)["position"]
                ws_seen[name]["position"] = await sockets[name].ask(message)

            try:
                # Officers ping before they subscribe, and the analyst sees the pings go
                # through the worker: a gateway that binds an officer's scope to their
                # own pings knows them when the subscription comes.
                await asyncio.gather(*(join(name) for name in WS_PRINCIPALS))
                await subscribe("analyst")
                await asyncio.gather(*(position(name) for name in OFFICERS))
                analyst = sockets["analyst"]
                for officer in OFFICERS:
                    sub = seed.subs[officer]
                    await analyst.until(
                        lambda f, sub=sub: (
                            f.get("type") == "event" and f["event"].get("officer_id") == sub
                        )
                    )
                others = [name for name in WS_PRINCIPALS if name != "analyst"]
                await asyncio.gather(*(subscribe(name) for name in others))
                await asyncio.gather(
                    *(position(name) for name in WS_PRINCIPALS if name not in OFFICERS)
                )
                for name in OFFICERS:  # pings again, now that everyone listens to the feed
                    await sockets[name].ask(ws_messages(seed, name)["position"])
                doomed = await open_socket("revoked", revoked_token)
                await doomed.ask({"type": "subscribe"})

                # ---- seed: revoke, alerts, a job, statements, files, a chat ---------------
                revoking = asyncio.create_task(asyncio.to_thread(revoke, engine, revoked_jti))
                check = {"state": "pending", "camera_id": f"CAM-MX-{nonce}",
                         "read_vrm": seed.vrm, "listed_vrm": seed.vrm}  # fmt: skip
                alerts = [
                    alert(seed.near_alert, roles=["officer"]),
                    alert(seed.co_alert, roles=["case_officer"]),
                    alert(seed.named_alert, roles=[], officers=[seed.subs["off_far"]]),
                ]
                for name in WS_PRINCIPALS:
                    alerts.append(
                        alert(seed.checks[name], roles=["officer"], rule_id="anpr_hotlist_hit",
                              details={"verification": check})
                    )  # fmt: skip
                near_ok = frozenset({"analyst", "sup_area", "sup_all", "off_near"})
                seed.markers[seed.near_alert] = near_ok
                seed.markers[seed.co_alert] = frozenset({"analyst", "sup_area", "sup_all",
                                                         "case_off"})  # fmt: skip
                seed.markers[seed.named_alert] = frozenset({"analyst", "sup_area", "sup_all",
                                                            "off_far"})  # fmt: skip
                for check_id in seed.checks.values():
                    seed.markers[check_id] = near_ok
                job = make_incident(
                    incident_id=seed.inc_job,
                    event="assigned",
                    at=datetime.now(UTC).isoformat(),
                    units=[seed.subs["off_near"]],
                    at_point=NEAR,
                )
                async with engine.producer() as producer:
                    for item in alerts:
                        await engine.send(producer, engine.topics.alerts, item["alert_id"], item)
                    await engine.send(producer, engine.topics.incidents, seed.inc_job, job)

                stmt_a, stmt_b = f"STMT-A-{nonce}", f"STMT-B-{nonce}"
                seed.markers[stmt_a] = frozenset({"sup_all", "case_off", "cit_a"})
                seed.markers[stmt_b] = frozenset({"sup_all", "sup_area", "cit_b"})
                for ref, token, text in ((seed.a, tokens["cit_a"], stmt_a),
                                         (seed.b, tokens["cit_b"], stmt_b)):  # fmt: skip
                    given = await http.post(
                        f"/api/cases/{ref}/statements",
                        json=statement_body(text),
                        headers={**bearer(token), **address()},
                    )
                    assert given.status_code == 201, given.text
                file_a, desc_a = f"FILE-A-{nonce}", f"DESC-A-{nonce}"
                uploaded = await http.post(
                    f"/api/cases/{seed.a}/evidence",
                    files={"file": ("notes.txt", f"{file_a}\n".encode(), "text/plain")},
                    data={"description": desc_a},
                    headers={**bearer(tokens["cit_a"]), **address()},
                )
                assert uploaded.status_code == 201, uploaded.text
                seed.ev_a = uploaded.json()["evidence_id"]
                for mark in (file_a, desc_a, seed.ev_a):
                    seed.markers[mark] = frozenset({"sup_all", "case_off", "cit_a"})
                file_staff = f"FILE-STAFF-{nonce}"
                uploaded = await http.post(
                    f"/api/cases/{seed.a}/evidence",
                    files={"file": ("notes.txt", f"{file_staff}\n".encode(), "text/plain")},
                    headers={**bearer(tokens["case_off"]), **address()},
                )
                assert uploaded.status_code == 201, uploaded.text
                seed.ev_staff = uploaded.json()["evidence_id"]
                for mark in (file_staff, seed.ev_staff):
                    seed.markers[mark] = frozenset({"sup_all", "case_off"})

                chat_a = f"CHAT-A-{nonce}"
                seed.markers[chat_a] = frozenset(
                    {"cit_a", "handler", "sup_all", "case_off", "analyst"}
                )
                citizen, handler = sockets["cit_a"], sockets["handler"]
                said = await citizen.ask(
                    {"type": "chat", "message_id": f"first-{nonce}", "text": chat_a}
                )
                assert said == "chat_accepted", said
                await citizen.until(lambda f: f.get("type") == "chat_delivered")
                assert await handler.ask({"type": "chat_take", "case_ref": seed.a}) == "chat_taken"

                await sockets["off_near"].until(
                    lambda f: f.get("type") == "alert" and f["alert_id"] == seed.near_alert
                )
                await sockets["case_off"].until(
                    lambda f: f.get("type") == "alert" and f["alert_id"] == seed.co_alert
                )
                await sockets["off_near"].until(
                    lambda f: (
                        f.get("type") in ("job", "jobs")
                        and seed.inc_job in orjson.dumps(f).decode()
                    )
                )
                await sockets["cit_b"].until(lambda f: f.get("type") == "case_update")
                await revoking
                async with asyncio.timeout(20):  # the gateway reads the list every 5 s
                    while doomed.closed is None:  # noqa: ASYNC110
                        await asyncio.sleep(0.1)
                seeded_at = time.monotonic()

                # ---- the matrix: HTTP (writes, then reads) and websocket messages ----------
                http_seen: dict[str, dict[str, str]] = {}
                codes: dict[str, set[str]] = {}
                bodies: list[tuple[str, str, str, str]] = []  # who, where, body, request
                gate = asyncio.Semaphore(12)
                everyone = {**{p: tokens[p] for p in http_principals}, **bad}

                async def one(who: str, row: str, req: Req) -> None:
                    async with gate:
                        outcome, code, body = await call(http, req, everyone[who])
                    http_seen.setdefault(who, {})[row] = outcome
                    if code in AUTH_CODES:
                        codes.setdefault(who, set()).add(code)
                    sent = orjson.dumps(req.json).decode() if req.json is not None else ""
                    if req.multipart is not None:
                        sent += str(req.multipart)
                    bodies.append((who, f"HTTP {row}", body, sent + req.path))

                async def http_wave(writes: bool) -> None:
                    jobs = []
                    for who in everyone:
                        for row, req in http_requests(seed, who).items():
                            if (req.method == "POST" and "/cases/" in req.path) == writes:
                                jobs.append(one(who, row, req))
                    await asyncio.gather(*jobs)

                async def ws_actor(name: str, rows: list[str]) -> None:
                    messages = ws_messages(seed, name)
                    for row in rows:
                        ws_seen[name][row] = await sockets[name].ask(messages[row])

                async def handshakes() -> None:
                    for who, token in {**bad, "anon": None}.items():
                        for path in ("/ws", "/elsewhere"):
                            outcome, code = await handshake(engine, path, token)
                            ws_seen.setdefault(who, {})[f"handshake {path}"] = outcome
                            if code in AUTH_CODES or outcome == "401":
                                codes.setdefault(who, set()).add(code or "")
                    for name in WS_PRINCIPALS:
                        outcome, _ = await handshake(engine, "/elsewhere", tokens[name])
                        ws_seen[name]["handshake /elsewhere"] = outcome

                middle = [r for r in ws_expected if r not in FIRST_WS and r not in LAST_WS]
                for who in everyone:  # what each one writes: seen by whom it may be, if kept
                    kept = who in WRITERS_OF_A
                    readers_of_a = frozenset({"sup_all", "case_off", who} if kept else {who})
                    for mark in ("STMT", "EVD", "FILEBY"):
                        seed.markers[f"{mark}-{who}-{nonce}"] = readers_of_a
                for who in WS_PRINCIPALS:
                    chats = who in ("cit_a", "handler")
                    seed.markers[f"CHAT-{who}-{nonce}"] = (
                        # the chat becomes a call: the desk sees calls (on the feed)
                        frozenset({"cit_a", "handler", "sup_all", "case_off", "analyst"})
                        if chats
                        else frozenset({who})
                    )
                await asyncio.gather(
                    http_wave(writes=True),
                    handshakes(),
                    *(ws_actor(name, middle) for name in WS_PRINCIPALS),
                )
                await http_wave(writes=False)
                await asyncio.gather(*(ws_actor(name, list(LAST_WS)) for name in WS_PRINCIPALS))
                # What must arrive, until it has (a miss is judged below), then a second
                # more for anything sent wrongly.
                waits = [
                    sockets[who].until(lambda f, row=row: ARRIVAL[row](seed, f), 20)
                    for row, expected_row in arrive_expected.items()
                    for who in WS_PRINCIPALS
                    if expected_row[who] == "yes"
                ]
                await asyncio.gather(*waits, return_exceptions=True)
                await asyncio.sleep(1.0)
                matrix_s = time.monotonic() - seeded_at
            finally:
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)

    # ---- judge -----------------------------------------------------------------------------
    mismatches: list[str] = []
    cells = {"http": 0, "ws": 0, "arrives": 0}
    http_table: dict[str, dict[str, tuple[str, str]]] = {}
    for row, expected_row in http_expected.items():
        for who in (*http_principals, *BAD_TOKENS):
            expected = expected_row[who if who in expected_row else "anon"]
            got = http_seen.get(who, {}).get(row, "not run")
            http_table.setdefault(row, {})[who] = (got, expected)
            cells["http"] += 1
            if got != expected:
                mismatches.append(f"HTTP {row} as {who}: got {got}, expected {expected}")
    for who in (*http_principals, *BAD_TOKENS):
        told = codes.get(who, set())
        wanted = {BAD_TOKENS[who]} if who in BAD_TOKENS else {ANON_CODE} if who == "anon" else set()
        if told != wanted:
            mismatches.append(f"401s to {who} said {sorted(told)}, expected {sorted(wanted)}")
    ws_table: dict[str, dict[str, tuple[str, str]]] = {}
    for row, expected_row in ws_expected.items():
        columns = list(WS_PRINCIPALS)
        if row.startswith("handshake"):
            columns += [*BAD_TOKENS, "anon"]
        for who in columns:
            if who in expected_row:
                expected = expected_row[who]
            else:  # a bad token or none: refused at the handshake; /elsewhere is 404 to all
                expected = "401" if row == "handshake /ws" else "404"
            got = ws_seen.get(who, {}).get(row, "not run")
            ws_table.setdefault(row, {})[who] = (got, expected)
            cells["ws"] += 1
            if got != expected:
                mismatches.append(f"WS {row} as {who}: got {got}, expected {expected}")
    if doomed.closed is None or doomed.closed[0] != 1008:
        mismatches.append(f"the revoked supervisor's open socket: {doomed.closed}, expected 1008")

    arrive_table: dict[str, dict[str, tuple[str, str]]] = {}
    for row, expected_row in arrive_expected.items():
        for who in WS_PRINCIPALS:
            sock = sockets[who]
            unasked = [f for i, f in enumerate(sock.frames) if i not in sock.replies]
            got = "yes" if any(ARRIVAL[row](seed, f) for f in unasked) else "no"
            arrive_table.setdefault(row, {})[who] = (got, expected_row[who])
            cells["arrives"] += 1
            if got != expected_row[who]:
                mismatches.append(f"arrives: {row} at {who}: {got}, expected {expected_row[who]}")

    # The leak scan: every frame and body, for markers its principal may not see.
    places: list[tuple[str, str, str, str]] = list(bodies)
    for who, sock in sockets.items():
        for i, text in enumerate(sock.raw):
            places.append(
                (who, f"frame {sock.frames[i].get('type')}", text, sock.replies.get(i, ""))
            )
    leaks = []
    for who, where, text, sent in places:
        for mark, allowed in seed.markers.items():
            if who not in allowed and mark in text and mark not in sent:
                leaks.append(f"{who} got {mark!r} in {where}")
    scanned = len(places)

    total = sum(cells.values())
    write_artifact(http_table, ws_table, arrive_table, mismatches, leaks, cells, scanned,
                   len(seed.markers), time.monotonic() - started, matrix_s)  # fmt: skip
    assert not mismatches and not leaks, (
        f"{len(mismatches)} of {total} cells differ, {len(leaks)} leaks "
        f"(table: {ARTIFACT}):\n" + "\n".join(mismatches + leaks)
    )


def _frame_text(f: dict[str, Any]) -> str:
    return orjson.dumps(f).decode()


def _alert_is(f: dict[str, Any], ids: set[str]) -> bool:
    return f.get("type") == "alert" and f.get("alert_id") in ids


ARRIVAL: dict[str, Callable[[Seed, dict[str, Any]], bool]] = {
    "alert near off_near": lambda s, f: _alert_is(f, {s.near_alert}),
    "alert for case officers": lambda s, f: _alert_is(f, {s.co_alert}),
    "alert naming off_far": lambda s, f: _alert_is(f, {s.named_alert}),
    "plate checks near off_near": lambda s, f: _alert_is(f, set(s.checks.values())),
    "verification frames": lambda s, f: (
        f.get("type") == "verification" and f.get("alert_id") in s.checks.values()
    ),
    "alert_ack frames": lambda s, f: (
        f.get("type") == "alert_ack" and f.get("alert_id") in {s.near_alert, *s.checks.values()}
    ),
    "case_update of A": lambda s, f: f.get("type") == "case_update" and f.get("case_ref") == s.a,
    "case_update of B": lambda s, f: f.get("type") == "case_update" and f.get("case_ref") == s.b,
    "chat of case A": lambda s, f: (
        f.get("type") in ("chat_message", "chat_history", "chat_status")
        and f.get("case_ref") == s.a
    ),
    "live events": lambda s, f: f.get("type") == "event",
    "off_near's pings (feed)": lambda s, f: (
        f.get("type") == "event" and f["event"].get("officer_id") == s.subs["off_near"]
    ),
    "off_near on the officer board": lambda s, f: (
        f.get("type") in ("officer", "officers") and s.subs["off_near"] in _frame_text(f)
    ),
    "incident of A on the board": lambda s, f: (
        f.get("type") in ("incident", "incidents") and f"INC-{s.a}" in _frame_text(f)
    ),
    "off_near's job": lambda s, f: (
        f.get("type") in ("incident", "incidents", "job", "jobs") and s.inc_job in _frame_text(f)
    ),
}


def _cell(got: str, expected: str) -> str:
    return got if got == expected else f"**{got}** (want {expected})"


def _table(title: str, rows: dict[str, dict[str, tuple[str, str]]]) -> list[str]:
    columns: list[str] = []
    for row in rows.values():
        columns += [c for c in row if c not in columns]
    lines = [f"## {title}", "", "| target | " + " | ".join(columns) + " |"]
    lines.append("|" + "---|" * (len(columns) + 1))
    for name, row in rows.items():
        cells = [_cell(*row[c]) if c in row else "" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def write_artifact(
    http_table: dict[str, dict[str, tuple[str, str]]],
    ws_table: dict[str, dict[str, tuple[str, str]]],
    arrive_table: dict[str, dict[str, tuple[str, str]]],
    mismatches: list[str],
    leaks: list[str],
    cells: dict[str, int],
    scanned: int,
    markers: int,
    took_s: float,
    matrix_s: float,
) -> None:
    """The outcome tables (a cell that differs is bold, with what was expected)."""
    total = sum(cells.values())
    lines = [
        "# Authorisation matrix: outcomes",
        "",
        f"Written by `tests/e2e/test_authz_matrix.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"(pid {os.getpid()}). {total} cells: {cells['http']} HTTP, {cells['ws']} websocket, "
        f"{cells['arrives']} arrivals; {len(mismatches)} differ from the expectations. "
        f"Leak scan: {scanned} bodies and frames searched for {markers} markers, "
        f"{len(leaks)} leaks. The test took {took_s:.1f} s ({matrix_s:.1f} s for the matrix "
        "after seeding).",
        "",
    ]
    lines += _table("HTTP (status[:what a list shows])", http_table)
    lines += _table("Websocket (reply to each message; handshakes)", ws_table)
    lines += _table("What arrives unasked", arrive_table)
    lines += ["## Differences", "", *(f"- {m}" for m in mismatches or ["none"]), ""]
    lines += ["## Leaks", "", *(f"- {m}" for m in leaks or ["none"]), ""]
    Path(ARTIFACT).parent.mkdir(parents=True, exist_ok=True)
    Path(ARTIFACT).write_text("\n".join(lines))


def test_every_route_and_message_type_has_a_row() -> None:
    """A new route or message type without a row in the tables fails (no engine needed)."""
    routes = app_routes()
    seed = Seed(nonce="N", a="WM-2026-0000001", b="WM-2026-0000002", ev_a="evd-1", ev_staff="evd-2",
                near_alert="al-1", vrm="MX1")  # fmt: skip
    seed.subs = {"off_near": "OFF-N", "off_far": "OFF-F"}
    covered = {reached(routes, "HTTP", r.method, r.path) for r in http_requests(seed, "x").values()}
    covered |= {reached(routes, "WS", "GET", "/ws"), reached(routes, "WS", "GET", "/elsewhere")}
    missing = route_keys(routes) - covered
    assert not missing, f"routes without a row in the matrix: {sorted(missing)}"
    assert "no route" not in covered
    ws_rows = set(parse_table(WS)[1]) - {"handshake /ws", "handshake /elsewhere"}
    assert set(MODELS) <= {row.split(" ")[0] for row in ws_rows}
    assert set(parse_table(ARRIVES)[1]) == set(ARRIVAL)
