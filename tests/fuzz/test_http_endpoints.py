"""Every HTTP endpoint of the gateway, fuzzed through Starlette's ``TestClient`` against
the real app as ``push.gateway.Gateway`` builds it (records in memory, Kafka writes to
a recording producer, evidence in a temporary folder): Hypothesis-made methods, paths
(path tricks, huge and odd path parameters), query strings, headers (tokens of every
role, forged, expired, none; odd content types and hosts) and bodies (mutated real
bodies, generated JSON, bytes, over the size limit; multipart uploads with wrong
types, huge files, path tricks in file names, broken or missing boundaries).

The property: no answer is a server error (status < 500), and no request raises in the
app (``TestClient`` re-raises what the app raises). Afterwards the gateway still serves
an ordinary request normally.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enrichers.verifications import MemoryVerifications
from push.gateway import Gateway
from records import MemoryRecords
from rtic.settings import PROJECT_ROOT, RateLimit, Settings
from rtic.tokens import issue_token
from tests.conftest import NOW, make_incident, make_officer_location
from tests.evidence_samples import FIXTURES, pdf
from tests.fuzz.hostile import (
    HOSTILE_SCALARS,
    ODD_TIMES,
    budget,
    count,
    encode,
    json_values,
    mutated,
)
from tests.fuzz.test_client_protocol import RecordingProducer
from tests.unit.push.conftest import COVENTRY, make_case, store_case
from tests.unit.push.test_api import SEARCH, FakeSearch
from tests.unit.push.test_fanout import alert
from tests.unit.push.test_portal import report, statement

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

SECRET = "fuzz-http-secret-of-at-least-32-bytes"
MINE = "WM-2026-0000001"
THEIRS = "WM-2026-0000002"
# Each example is a whole request through the app (slower than a decode); an upload or
# a body route gets more, as its input has more to vary.
EXAMPLES_PER_ROUTE = 8
UNLIMITED = RateLimit(burst=10**9, per_minute=10**9)  # the fuzz is one address: no 429s


def token(role: str, sub: str, ttl: int = 3600, **kw: Any) -> str:
    return issue_token(SECRET, sub=sub, role=role, now=NOW, ttl_seconds=ttl, **kw)


TOKENS: dict[str, str | None] = {
    "analyst": token("rtic_analyst", "an-1"),
    "officer": token("officer", "OFF-1", areas=["E08000025"]),
    "supervisor": token("supervisor", "sup-1", areas=["E08000025"]),
    "case_officer": token("case_officer", "co-1"),
    "citizen": token("citizen", "cit-1", cases=[MINE]),
    "contact_handler": token("contact_handler", "ch-1"),
    "none": None,
    "expired": issue_token(
        SECRET, sub="an-1", role="rtic_analyst", now=NOW - timedelta(days=2), ttl_seconds=60
    ),
    "forged": issue_token(
        "not-the-secret-but-long-enough-32b", sub="x", role="rtic_analyst", now=NOW, ttl_seconds=60
    ),
    "alg_none": jwt.encode({"sub": "x", "role": "rtic_analyst"}, key=None, algorithm="none"),
    "garbage": "not.a.token",
    "huge": "a" * 9000,
}

# (method, path template, body kind, query parameters the route reads)
ROUTES: list[tuple[str, str, str, list[str]]] = [
    ("GET", "/", "none", []),
    ("GET", "/rtic", "none", []),
    ("GET", "/index.html", "none", []),
    ("GET", "/cases", "none", []),
    ("GET", "/officer", "none", []),
    ("GET", "/officer-sw.js", "none", []),
    ("GET", "/portal", "none", []),
    ("GET", "/handler", "none", []),
    ("GET", "/api/boundaries", "none", ["level"]),
    ("GET", "/api/config", "none", []),
    ("GET", "/healthz", "none", []),
    ("GET", "/metrics", "none", []),
    ("GET", "/static/{file}", "none", []),
    ("GET", "/api/cases", "none", ["status"]),
    ("GET", "/api/cases/{case_ref}", "none", []),
    ("GET", "/api/evidence/{evidence_id}", "none", []),
    ("POST", "/api/search", "search", []),
    ("GET", "/api/audit", "none", ["object_type", "object_id"]),
    ("GET", "/api/anpr/cameras", "none", []),
    ("GET", "/api/desk/stats", "none", []),
    ("GET", "/api/desk/priorities", "none", []),
    ("GET", "/api/desk/trends", "none", ["level", "top"]),
    ("GET", "/api/incidents", "none", []),
    ("GET", "/api/incidents/{incident_id}/candidates", "none", ["limit"]),
    ("GET", "/api/officers/workload", "none", []),
    ("POST", "/api/cases/{case_ref}/evidence", "upload", []),
    ("GET", "/api/cases/{case_ref}/evidence", "none", []),
    ("GET", "/api/evidence/{evidence_id}/content", "none", []),
    ("GET", "/api/portal/evidence-rules", "none", []),
    ("GET", "/api/portal/outcomes", "none", ["category"]),
    ("POST", "/api/portal/reports", "report", []),
    ("POST", "/api/portal/session", "session", []),
    ("GET", "/api/cases/{case_ref}/statements", "none", []),
    ("POST", "/api/cases/{case_ref}/statements", "statement", []),
]

PATH_VALUES = {
    "case_ref": [MINE, THEIRS, "WM-2026-0009999"],
    "evidence_id": [f"EV-{MINE}", "EV-1"],
    "incident_id": ["INC-1", "INC-2"],
    "file": ["rtic.js", "rtic.css", "officer.js"],
}
PATH_TRICKS = [
    "..",
    "../../rtic/settings.py",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%5c..%5cwindows",
    "a" * 5000,
    "x/../../y",
    "\u0000",
    "%00",
    "CON",
    ".",
    "~root",
    "🚓",
    "WM-2026-0000001/../WM-2026-0000002",
    "' OR 1=1 --",
    "%",
    "%zz",
]
BODIES = {
    "search": [SEARCH],
    "report": [report()],
    "session": [{"case_ref": MINE, "secret": "ABCD-EFGH-JKLM"}],
    "statement": [statement()],
}
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=" + "b" * 300,
    "multipart/form-data; boundary=fuzz",
    "image/jpeg",
    "\u00ff/\u00ff",
]
FILES = {
    "photo.jpg": ((FIXTURES / "photo.jpg").read_bytes(), "image/jpeg"),
    "statement.pdf": (pdf(), "application/pdf"),
    "notes.txt": (b"what I saw\n", "text/plain"),
}
FILE_NAMES = [
    "photo.jpg",
    "../../../etc/passwd",
    "..\\..\\boot.ini",
    "a" * 1000 + ".jpg",
    "\u0000.jpg",
    "photo.exe",
    "",
    "photo.jpg\r\nContent-Type: text/html",
    "🚓.png",
]


@dataclass
class Site:
    http: TestClient
    gateway: Gateway


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    evidence = tmp_path_factory.mktemp("evidence")
    settings = Settings(
        token_secret=SECRET,  # type: ignore[arg-type]
        data_dir=PROJECT_ROOT / "data",
        evidence_dir=evidence,
        force_code="WM",
        rate_limits={
            n: UNLIMITED
            for n in ("portal_report", "portal_session", "statement", "evidence_upload")
        },
    )
    records = MemoryRecords()
    gateway = Gateway(settings, clock=lambda: NOW, records=records, search=FakeSearch())
    gateway.kafka._producer = RecordingProducer()  # type: ignore[assignment]
    gateway.verify.store = MemoryVerifications()  # Redis's in open_stores
    gateway.dispatch.replayed()
    gateway.deliver("incident", make_incident(incident_id="INC-1"))
    gateway.deliver("officer_location", make_officer_location(officer_id="OFF-1"))
    gateway.deliver("alert", {**alert("a1"), "rule_id": "r", "title": "t", "summary": "s"})
    with TestClient(gateway.app, base_url="http://localhost") as http:
        http.portal.call(store_case, records, make_case(MINE, attending=["OFF-2", "co-1"]))
        http.portal.call(
            store_case,
            records,
            make_case(THEIRS, officer_in_charge="OFF-9", attending=[], area=[COVENTRY]),
        )
        yield Site(http, gateway)


def _text() -> st.SearchStrategy[str]:
    return st.sampled_from([v for v in HOSTILE_SCALARS if isinstance(v, str)]) | st.text(
        max_size=30
    )


@st.composite
def path_value(draw: st.DrawFn, name: str) -> str:
    value = draw(st.sampled_from(PATH_VALUES[name]) | st.sampled_from(PATH_TRICKS) | _text())
    how = draw(st.sampled_from(["quoted", "quoted", "raw"]))
    if how == "quoted":
        return quote(value, safe="")
    return quote(value, safe="/.%~'=;,:@!$&()*+")  # slashes, dots and escapes as they are


def multipart(draw: st.DrawFn) -> tuple[bytes, str]:
    """A multipart upload, valid or broken: (body, content type)."""
    name = draw(st.sampled_from(list(FILES)))
    data, ctype = FILES[name]
    filename = draw(st.sampled_from(FILE_NAMES))
    field = draw(st.sampled_from(["file", "file", "other", ""]))
    part_type = draw(st.sampled_from([ctype, ctype, "text/html", "application/octet-stream", ""]))
    damage = draw(
        st.sampled_from(
            ["none", "none", "truncate", "no_end", "huge", "wrong_boundary", "two_files", "junk"]
        )
    )
    if damage == "huge":
        data = data + b"\x00" * (3 * 1024 * 1024)
    elif damage == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "junk":
        data = draw(st.binary(max_size=200))
    boundary = "fuzzboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: {part_type}\r\n\r\n'
    ).encode("utf-8", errors="surrogatepass")
    body = head + data + b"\r\n"
    if damage == "two_files":
        body += head + data + b"\r\n"
    if damage != "no_end":
        body += f"--{boundary}--\r\n".encode()
    said = boundary if damage != "wrong_boundary" else "otherboundary"
    return body, f"multipart/form-data; boundary={said}"


@st.composite
def requests(draw: st.DrawFn, route: tuple[str, str, str, list[str]]) -> dict[str, Any]:
    method, template, body_kind, params = route
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    path = template
    for name in PATH_VALUES:
        if "{" + name + "}" in path:
            path = path.replace("{" + name + "}", draw(path_value(name)))
    if draw(st.integers(0, 19)) == 0:
        path = draw(st.sampled_from(["//", "/api/", "/api/cases/", "/static/", "/%2e%2e/"])) + path
    query: list[tuple[str, str]] = [(p, draw(_text())) for p in params if draw(st.booleans())]
    if draw(st.integers(0, 4)) == 0:
        query.append((draw(_text()), draw(_text())))
    who = draw(st.sampled_from(list(TOKENS)))
    headers: dict[str, str] = {}
    bearer = TOKENS[who]
    if bearer is not None:
        if draw(st.integers(0, 9)) == 0:
            query.append(("token", bearer))
        else:
            headers["Authorization"] = draw(
                st.sampled_from([f"Bearer {bearer}", f"bearer {bearer}", bearer, f"Basic {bearer}"])
            )
    body: bytes | None = None
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    if body_kind == "upload" and draw(st.integers(0, 4)) > 0:
        body, ctype = multipart(draw)
    elif body_kind in BODIES and draw(st.integers(0, 4)) > 0:
        value = draw(mutated(BODIES[body_kind], gentle=draw(st.booleans())))
        body = encode(value, draw(st.sampled_from(["orjson", "stdlib", "latin1"])))
        ctype = draw(st.sampled_from(["application/json", "application/json", *CONTENT_TYPES[:4]]))
    elif method != "GET" or draw(st.integers(0, 9)) == 0:
        body = draw(
            st.sampled_from([b"", b"{}", b"[]", b"null", b"x" * (2 * 1024 * 1024)])
            | st.binary(max_size=100)
            | st.builds(lambda v: orjson.dumps(v), json_values(8))
        )
    if ctype is not None:
        headers["Content-Type"] = ctype
    extra = draw(
        st.sampled_from(
            [
                {},
                {},
                {"Host": "evil.example:99999"},
                {"Host": "[::1"},
                {"X-Forwarded-For": "1.2.3.4, " * 50},
                {"Range": "bytes=999999999-"},
                {"Range": "bytes=-1,-2,5-1"},
                {"Accept": "\u00ff" * 10},
                {"Origin": "null"},
                {"Content-Encoding": "gzip"},
            ]
        )
    )
    headers.update(extra)
    return {
        "method": method,
        "url": path,
        "params": query,
        "headers": headers,
        "content": body,
        "route": f"{method} {template}",
    }


def check(site: Site, request_: dict[str, Any]) -> None:
    route = request_.pop("route")
    # Header values as bytes: the wire carries any octets, httpx encodes str as ASCII only.
    request_["headers"] = {k: v.encode("utf-8") for k, v in request_["headers"].items()}
    answer = site.http.request(**request_)
    if route == "GET /healthz" and answer.status_code == 503:
        # Its contract: no Kafka consumer here, so "degraded" (a monitor's signal).
        assert answer.json()["status"] == "degraded"
        count("http", "healthz_degraded")
    else:
        assert answer.status_code < 500, (route, answer.status_code, answer.text[:500])
        count("http", f"{answer.status_code // 100}xx")
    count("detail:http_status", str(answer.status_code))
    count("detail:http_routes", route)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {t}" for m, t, _, _ in ROUTES])
def test_no_request_gets_a_server_error(site: Site, route: tuple[str, str, str, list[str]]) -> None:
    @budget(EXAMPLES_PER_ROUTE * (4 if route[2] != "none" else 1))
    @given(requests(route))
    def prop(request_: dict[str, Any]) -> None:
        check(site, request_)

    prop()


def test_the_gateway_still_serves_after_the_fuzz(site: Site, tmp_path: Path) -> None:
    """After everything above: an ordinary case read and an ordinary upload succeed."""
    mine = site.http.get(
        f"/api/cases/{MINE}", headers={"Authorization": f"Bearer {TOKENS['officer']}"}
    )
    assert mine.status_code == 200 and mine.json()["case"]["case_ref"] == MINE
    data, ctype = FILES["photo.jpg"]
    upload = site.http.post(
        f"/api/cases/{MINE}/evidence",
        headers={"Authorization": f"Bearer {TOKENS['citizen']}"},
        files={"file": ("photo.jpg", data, ctype)},
    )
    assert upload.status_code in (200, 201), upload.text


@pytest.mark.parametrize("at", ODD_TIMES)
def test_odd_times_in_bodies_are_refused_or_taken(site: Site, at: str) -> None:
    """Every odd timestamp where a body carries one: a report's time, a statement's."""
    citizen = {"Authorization": f"Bearer {TOKENS['citizen']}"}
    answers = [
        site.http.post("/api/portal/reports", json=report(occurred_at=at)),
        site.http.post(
            f"/api/cases/{MINE}/statements", json=statement(when={"from": at}), headers=citizen
        ),
        site.http.post(
            f"/api/cases/{MINE}/statements",
            json=statement(when={"from": "2026-11-24T12:00:00Z", "to": at}),
            headers=citizen,
        ),
    ]
    for answer in answers:
        assert answer.status_code < 500, (at, answer.status_code, answer.text[:300])
        count("http:odd_times", f"{answer.status_code // 100}xx")
