"""Evidence uploads over real HTTP against the real gateway (uvicorn on a port, the
session's Tansu, a SQLite database of the test's own, files in a folder of its own):
every accepted type kept content-addressed, refusals that leave nothing behind,
the metadata on ``rtic.evidence.v1`` turned into a timeline entry by the case
worker, downloads to the case's people only, each audited; the what-if figures
recomputed from the shipped files.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from push.outcomes import NO_OUTCOME, OUTCOME_GROUP
from records.evidence_files import EvidenceFiles
from rtic.casework import AuditAction, AuditObject, TimelineKind
from rtic.kafka import bootstrap_servers
from rtic.settings import PROJECT_ROOT, RateLimit, Settings
from streams.casework import CaseWork
from streams.pipeline import RawRecord
from tests.evidence_samples import mp3, samples
from tests.portal_gateway import KB, Running, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(settings: Settings, tmp_path: Path, unique: Any) -> AsyncIterator[Running]:
    async with running_gateway(settings, tmp_path, unique) as gateway:
        yield gateway


async def _topic(
    settings: Settings,
    topic: str,
    count: int,
    enough: Callable[[list[RawRecord]], bool] | None = None,
) -> list[RawRecord]:
    """The topic's messages from the start: at least ``count`` (and ``enough`` of them)."""
    consumer = AIOKafkaConsumer(
        f"{settings.topic_prefix}{topic}",
        bootstrap_servers=bootstrap_servers(settings.kafka_url),
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        got: list[RawRecord] = []
        async with asyncio.timeout(20):
            while len(got) < count or (enough is not None and not enough(got)):
                for tp, batch in (await consumer.getmany(timeout_ms=200)).items():
                    got += [
                        RawRecord(tp.topic, tp.partition, m.offset, m.key, m.value) for m in batch
                    ]
        return got
    finally:
        await consumer.stop()


def _upload(name: str, data: bytes, declared: str = "application/octet-stream") -> Any:
    return {"file": (name, data, declared)}


async def test_every_accepted_type_is_kept_by_its_hash_and_reaches_the_timeline(
    running: Running,
) -> None:
    ref = running.refs["mine"]
    answers: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        rules = (await http.get("/api/portal/evidence-rules")).json()
        limits = {f["family"]: f["max_bytes"] for f in rules["families"]}
        assert limits == {
            "image": 40 * KB,
            "video": 60 * KB,
            "audio": 30 * KB,
            "document": 20 * KB,
            "text": 4 * KB,
        }
        for name, (data, content_type) in samples().items():
            # The declared type is a lie on purpose: the bytes decide.
            answer = await http.post(
                f"/api/cases/{ref}/evidence",
                files=_upload(name, data, "application/x-anything"),
                data={"description": f"my {name}"},
                headers=running.citizen(),
            )
            assert answer.status_code == 201, (name, answer.text)
            body = answer.json()
            assert body["content_type"] == content_type, name
            assert body["sha256"] == hashlib.sha256(data).hexdigest()
            assert body["bytes"] == len(data) and body["filename"] == name
            assert not body["duplicate"]
            kept = running.store / "sha256" / body["sha256"][:2] / body["sha256"]
            assert kept.read_bytes() == data
            answers[name] = body
        again = await http.post(
            f"/api/cases/{ref}/evidence",
            files=_upload("copy.png", samples()["photo.png"][0]),
            headers=running.citizen(),
        )
        assert again.status_code == 201 and again.json()["duplicate"]
        assert again.json()["evidence_id"] == answers["photo.png"]["evidence_id"]
        listed = await http.get(f"/api/cases/{ref}/evidence", headers=running.citizen())
    assert listed.status_code == 200
    items = listed.json()["evidence"]
    assert sorted(i["evidence_id"] for i in items) == sorted(
        b["evidence_id"] for b in answers.values()
    )
    assert all("storage_uri" not in i and "uploaded_by" not in i for i in items)
    assert not list((running.store / "incoming").iterdir())
    # The metadata went to rtic.evidence.v1; the case worker makes the timeline entries.
    messages = await _topic(running.settings, "rtic.evidence.v1", len(answers))
    assert len(messages) == len(answers)  # the duplicate was not sent again
    work = CaseWork(running.settings, running.records)
    await work.case_batch(messages)
    view = await running.records.cases.view(ref)
    assert view is not None
    entries = [e for e in view.timeline if e.kind is TimelineKind.EVIDENCE_RECEIVED]
    assert len(entries) == len(answers)
    texts = {e.text for e in entries}
    assert "We have received evidence for your case: a photo." in texts
    assert "We have received evidence for your case: a video." in texts
    assert "We have received evidence for your case: an audio recording." in texts


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("big.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * (41 * KB), 413, "too_large"),
        ("long.txt", b"a" * (5 * KB), 413, "too_large"),
        ("virus.exe", b"MZ\x90\x00" + b"\x00" * 500, 415, "unsupported_type"),
        ("report.docx", b"PK\x03\x04" + b"\x00" * 500, 415, "unsupported_type"),
        ("page.html", b"<html><body>\x00</body></html>", 415, "unsupported_type"),
        ("photo.jpg", samples()["photo.png"][0][:300], 400, "bad_upload"),  # a cut PNG
        ("video.mp4", samples()["video.mp4"][0][:5000], 400, "bad_upload"),
        ("../../x.jpg", samples()["photo.jpg"][0], 400, "bad_upload"),
        ("/etc/passwd", mp3(), 400, "bad_upload"),
        ("C:\\Users\\me\\x.png", samples()["photo.png"][0], 400, "bad_upload"),
        ("..", samples()["photo.png"][0], 400, "bad_upload"),
        ("empty.png", b"", 400, "bad_upload"),
    ],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    running: Running, name: str, data: bytes, status: int, code: str
) -> None:
    ref = running.refs["mine"]
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        answer = await http.post(
            f"/api/cases/{ref}/evidence", files=_upload(name, data), headers=running.citizen()
        )
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
        assert answer.json()["error"]["message"]
        listed = await http.get(f"/api/cases/{ref}/evidence", headers=running.citizen())
    assert listed.json()["evidence"] == []
    assert running.files_on_disk() == []  # nothing kept, no incoming file left
    assert await running.records.cases.view(ref) is not None


def _multipart(boundary: str, parts: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for headers, body in parts:
        out += f"--{boundary}\r\n{headers}\r\n\r\n".encode() + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def test_broken_multipart_is_refused_with_400(running: Running) -> None:
    ref = running.refs["mine"]
    png = samples()["photo.png"][0]
    disposition = 'Content-Disposition: form-data; name="file"; filename="p.png"'
    whole = _multipart("XyZ", [(disposition, png)])
    cases = {
        "cut short": whole[: len(whole) - 40],
        "no closing boundary": whole[: whole.rfind(b"--XyZ--")],
        "wrong boundary": whole.replace(b"XyZ", b"AbC"),
        "garbage": b"this is not multipart at all",
        "two files": _multipart("XyZ", [(disposition, png), (disposition, png)]),
        "no file": _multipart(
            "XyZ", [('Content-Disposition: form-data; name="description"', b"hi")]
        ),
        "unknown field": _multipart("XyZ", [('Content-Disposition: form-data; name="x"', b"1")]),
        "NUL in the name": whole.replace(b'"p.png"', b'"p\x00.png"'),
        "a control character in the name": whole.replace(b'"p.png"', b'"p\x01.png"'),
        "a path in the name": whole.replace(b'"p.png"', b'"../../p.png"'),
    }
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        for why, body in cases.items():
            answer = await http.post(
                f"/api/cases/{ref}/evidence",
                content=body,
                headers={**running.citizen(), "Content-Type": "multipart/form-data; boundary=XyZ"},
            )
            assert answer.status_code == 400, (why, answer.text)
            assert answer.json()["error"]["code"] == "bad_upload", why
        not_multipart = await http.post(
            f"/api/cases/{ref}/evidence",
            content=png,
            headers={**running.citizen(), "Content-Type": "image/png"},
        )
        assert not_multipart.status_code == 400
    assert running.files_on_disk() == []


async def test_a_declared_body_over_the_largest_limit_is_refused_before_reading(
    running: Running,
) -> None:
    ref = running.refs["mine"]

    async def endless() -> AsyncIterator[bytes]:
        yield b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="v.webm"\r\n\r\n'
        for _ in range(200):
            yield b"\x00" * 1024

    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        answer = await http.post(
            f"/api/cases/{ref}/evidence",
            content=b"x" * (200 * KB),
            headers={**running.citizen(), "Content-Type": "multipart/form-data; boundary=XyZ"},
        )
        assert answer.status_code == 413
        assert "60 KB" in answer.json()["error"]["message"]
        # Streamed with no length: refused when the file's type is known (415 here) or
        # over its limit, never read whole.
        streamed = await http.post(
            f"/api/cases/{ref}/evidence",
            content=endless(),
            headers={**running.citizen(), "Content-Type": "multipart/form-data; boundary=XyZ"},
        )
        assert streamed.status_code == 415
    assert running.files_on_disk() == []


async def test_only_the_cases_people_upload_list_and_download(running: Running) -> None:
    mine, other = running.refs["mine"], running.refs["other"]
    jpg = samples()["photo.jpg"][0]
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        up = await http.post(
            f"/api/cases/{mine}/evidence",
            files=_upload("Straße at night.jpg", jpg),
            headers=running.citizen(),
        )
        assert up.status_code == 201, up.text
        evidence_id = up.json()["evidence_id"]
        by_officer = await http.post(
            f"/api/cases/{mine}/evidence",
            files=_upload("bwv-still.png", samples()["photo.png"][0]),
            headers=running.auth("officer", "OFF-mine"),
        )
        assert by_officer.status_code == 201
        staff_item = by_officer.json()["evidence_id"]
        outsiders = {
            "another case's citizen": running.citizen(other),
            "a citizen with no case": running.auth("citizen", "c-none"),
            "another officer": running.auth("officer", "OFF-other"),
            "an analyst": running.auth("rtic_analyst", "an-1"),
            "a supervisor of another area": running.auth("supervisor", "s-1", areas=["E08000025"]),
            "a contact handler": running.auth("contact_handler", "ch-1"),
        }
        for who, headers in outsiders.items():
            for method, path in (
                ("POST", f"/api/cases/{mine}/evidence"),
                ("GET", f"/api/cases/{mine}/evidence"),
                ("GET", f"/api/evidence/{evidence_id}/content"),
            ):
                kw: dict[str, Any] = {"files": _upload("x.jpg", jpg)} if method == "POST" else {}
                answer = await http.request(method, path, headers=headers, **kw)
                assert answer.status_code == 404, (who, method, path, answer.text)
        nobody = await http.get(f"/api/evidence/{evidence_id}/content")
        assert nobody.status_code == 401
        unknown = await http.get(f"/api/evidence/evd-{'0' * 20}/content", headers=running.citizen())
        assert unknown.status_code == 404
        # The citizen gets their own file, not the officer's, and lists only theirs.
        mine_listed = await http.get(f"/api/cases/{mine}/evidence", headers=running.citizen())
        assert [i["evidence_id"] for i in mine_listed.json()["evidence"]] == [evidence_id]
        refused = await http.get(f"/api/evidence/{staff_item}/content", headers=running.citizen())
        assert refused.status_code == 404
        got = await http.get(f"/api/evidence/{evidence_id}/content", headers=running.citizen())
        assert got.status_code == 200 and got.content == jpg
        assert got.headers["content-type"] == "image/jpeg"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in got.headers["content-security-policy"]
        disposition = got.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="Stra_e_at_night.jpg"')
        assert "filename*=UTF-8''Stra%C3%9Fe%20at%20night.jpg" in disposition
        by_staff = await http.get(
            f"/api/evidence/{evidence_id}/content", headers=running.auth("officer", "OFF-mine")
        )
        assert by_staff.status_code == 200 and by_staff.content == jpg
        supervisor = await http.get(
            f"/api/evidence/{evidence_id}/content",
            headers=running.auth("supervisor", "s-2", areas=["E08000026"]),
        )
        assert supervisor.status_code == 200
    # Each download is audited, before the bytes left.
    work = CaseWork(running.settings, running.records)

    def three_downloads(got: list[RawRecord]) -> bool:
        return sum(b"evidence_downloaded" in (r.value or b"") for r in got) >= 3

    await work.audit_batch(await _topic(running.settings, "rtic.audit.v1", 3, three_downloads))
    trail = await running.records.audit.for_object(AuditObject.EVIDENCE, evidence_id)
    downloads = [r for r in trail if r.action is AuditAction.EVIDENCE_DOWNLOADED]
    assert [(r.actor, r.role) for r in downloads] == [
        (f"citizen-{mine}", "citizen"),
        ("OFF-mine", "officer"),
        ("s-2", "supervisor"),
    ]
    assert all(r.detail["content"] and r.reference == mine for r in downloads)


async def test_a_citizen_may_upload_before_the_case_worker_has_written_the_case(
    running: Running,
) -> None:
    fresh = "WM-2026-9999999"
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        answer = await http.post(
            f"/api/cases/{fresh}/evidence",
            files=_upload("n.txt", b"what I saw\n"),
            headers=running.citizen(fresh),
        )
        assert answer.status_code == 201, answer.text
        staff = await http.post(
            f"/api/cases/{fresh}/evidence",
            files=_upload("n.txt", b"what I saw\n"),
            headers=running.auth("supervisor", "s-all"),
        )
        assert staff.status_code == 404  # no such case yet, for staff
    found = await running.records.cases.get_evidence(answer.json()["evidence_id"])
    assert found is not None and found[1] == fresh


async def test_a_store_that_cannot_be_written_is_a_503_and_keeps_nothing(
    running: Running, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store's folder should be")
    desk = running.gateway.app.state.evidence
    desk.files, desk.prepared = EvidenceFiles(blocked / "evidence"), False
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        answer = await http.post(
            f"/api/cases/{running.refs['mine']}/evidence",
            files=_upload("p.png", samples()["photo.png"][0]),
            headers=running.citizen(),
        )
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "store_unavailable"
    view = await running.records.cases.view(running.refs["mine"])
    assert view is not None and view.evidence == []


async def test_uploads_are_rate_limited_per_client(running: Running) -> None:
    running.gateway.app.state.rate_limiter.rates["evidence_upload"] = RateLimit(
        burst=2, per_minute=0.5
    )
    ref = running.refs["mine"]
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        codes = [
            (
                await http.post(
                    f"/api/cases/{ref}/evidence",
                    files=_upload("n.txt", f"note {i}\n".encode()),
                    headers=running.citizen(),
                )
            ).status_code
            for i in range(3)
        ]
    assert codes == [201, 201, 429]


async def test_the_what_if_shares_are_the_shipped_files_recomputed(running: Running) -> None:
    rows = list(csv.DictReader((PROJECT_ROOT / "data" / "outcomes" / "street-outcomes.csv").open()))
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        counts.setdefault(row["crime_type"], Counter())[row["outcome"]] += int(row["count"])
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        index = (await http.get("/api/portal/outcomes")).json()
        assert index["period"] == "July 2016 and July 2017"
        assert index["forces"] == ["West Yorkshire Police"]
        assert index["licence"] == "Open Government Licence v3.0"
        assert index["caveats"]
        assert {c["label"] for c in index["categories"]} == set(counts)
        for crime_type, outcomes in counts.items():
            slug = next(c["category"] for c in index["categories"] if c["label"] == crime_type)
            answer = await http.get("/api/portal/outcomes", params={"category": slug})
            assert answer.status_code == 200
            detail = answer.json()["outcome"]
            known = {o: n for o, n in outcomes.items() if o != NO_OUTCOME}
            total = sum(known.values())
            assert detail["with_outcome"] == total
            assert detail["crimes"] == sum(outcomes.values())
            got = {o["outcome"]: (o["count"], o["share"]) for o in detail["outcomes"]}
            assert got == {o: (n, round(100 * n / total, 1)) for o, n in known.items()}
            groups = {g["group"]: g["count"] for g in detail["groups"]}
            for group, n in groups.items():
                assert n == sum(c for o, c in known.items() if OUTCOME_GROUP[o] == group)
        vehicle = (await http.get("/api/portal/outcomes?category=vehicle-crime")).json()
        shares = {o["outcome"]: o["share"] for o in vehicle["outcome"]["outcomes"]}
        # Most vehicle crime ends with no suspect identified (2,096 + 1,990 crimes).
        assert (
            max(shares, key=lambda o: shares[o]) == "Investigation complete; no suspect identified"
        )
        missing = await http.get("/api/portal/outcomes?category=dragons")
        assert missing.status_code == 404


@pytest.mark.skipif(
    not Path("/work/shared/data/crimes").is_dir(), reason="the source files are not on this machine"
)
def test_the_shipped_extract_is_what_the_script_makes_from_the_source(tmp_path: Path) -> None:
    from push.outcomes import build_extract

    build_extract(Path("/work/shared/data/crimes"), tmp_path)
    shipped = PROJECT_ROOT / "data" / "outcomes"
    for name in ("street-outcomes.csv", "recorded-crime.csv", "source.json"):
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes(), name
