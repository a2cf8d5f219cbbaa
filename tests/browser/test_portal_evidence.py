"""The portal's evidence upload and "what happens next" in Chromium on a phone, against
a real gateway (``tests/portal_gateway.py``: uvicorn, Tansu, SQLite, a folder of its
own, small upload limits).

A citizen session is what portal.js leaves in sessionStorage after a report or
"track my case" (portal.html's comment): here a citizen token for the case, minted
by the test, put there before the page's scripts run.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from push.evidence import EvidenceDesk
from rtic.settings import PROJECT_ROOT, Settings
from tests.browser.browsing import PAGES_MARKS, SCREENSHOTS, OpenPage, browser_pages, fits_width
from tests.evidence_samples import samples
from tests.portal_gateway import KB, Running, running_gateway

pytestmark = PAGES_MARKS

PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DOCS = PROJECT_ROOT / "docs" / "screenshots"


@pytest.fixture
async def running(
    settings: Settings, tmp_path: Path, unique: Callable[[str], str]
) -> AsyncIterator[Running]:
    async with running_gateway(settings, tmp_path, unique) as gateway:
        yield gateway


@pytest.fixture
async def open_page(running: Running) -> AsyncIterator[OpenPage]:
    async with browser_pages(running.base, running.ticket) as open_:
        yield open_


async def _screenshot(part: Any, name: str) -> None:
    """One section of the page, into artifacts/screenshots and docs/screenshots (the
    README shows them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await part.screenshot(path=str(SCREENSHOTS / name))
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCREENSHOTS / name, DOCS / name)


async def _as_citizen(page: Any, running: Running, ref: str) -> None:
    token = running.token("citizen", f"citizen-{ref}", cases=[ref])
    session = orjson.dumps({"token": token, "ref": ref}).decode()
    await page.add_init_script(
        f"(() => {{ const s = {session}; sessionStorage.setItem('rtic.portal.token', s.token);"
        " sessionStorage.setItem('rtic.portal.case_ref', s.ref); })()"
    )
    await page.reload()


async def test_a_citizen_sends_evidence_from_a_phone(
    running: Running, open_page: OpenPage, tmp_path: Path
) -> None:
    ref = running.refs["mine"]
    page = await open_page("/portal", None, **PHONE)
    assert await page.locator("#evidence").is_hidden()  # no session: nothing to send to
    await _as_citizen(page, running, ref)
    section = page.locator("#evidence")
    await section.get_by_role("heading", name="Send us photos, videos or documents").wait_for()
    rules = page.locator("#evidence-rules")
    await rules.locator("li[data-family='image']").wait_for()
    assert "Photos: up to 40 KB (JPEG, PNG, GIF, WebP, HEIC)" in await rules.inner_text()
    assert "Videos: up to 60 KB" in await rules.inner_text()
    choose = page.get_by_label("Choose a file")
    upload = page.get_by_role("button", name="Upload")

    # Too big, said before anything is sent.
    big = b"\xff\xd8\xff\xe0" + b"\x00" * (50 * KB)
    await choose.set_input_files({"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": big})
    check = page.locator("#evidence-check")
    await check.get_by_text("photos can be at most 40 KB").wait_for()
    await upload.click()
    assert "at most 40 KB" in await page.locator("#evidence-error").inner_text()
    assert running.files_on_disk() == []

    # Not a type we take, whatever its name and declared type: the gateway says so.
    await choose.set_input_files(
        {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"MZ\x90\x00" + b"\x00" * 900}
    )
    await upload.click()
    error = page.locator("#evidence-error")
    await error.get_by_text("We cannot take this kind of file").wait_for(timeout=10_000)
    assert running.files_on_disk() == []

    # A photo and a voice note: sent, with progress, and listed.
    jpg = samples()["photo.jpg"][0]
    await choose.set_input_files({"name": "car park.jpg", "mimeType": "image/jpeg", "buffer": jpg})
    await page.get_by_label("What is it? (optional)").fill("The car driving off")
    await upload.click()
    await (
        page.locator("#evidence-status")
        .get_by_text("Received car park.jpg")
        .wait_for(timeout=10_000)
    )
    ogg = samples()["audio.ogg"][0]
    await choose.set_input_files({"name": "voice.ogg", "mimeType": "audio/ogg", "buffer": ogg})
    await upload.click()
    await (
        page.locator("#evidence-status").get_by_text("Received voice.ogg").wait_for(timeout=10_000)
    )
    items = page.locator("#evidence-list li.ev-item")
    await items.nth(1).wait_for()
    assert await items.count() == 2
    first = await items.nth(0).inner_text()  # newest first
    assert "voice.ogg" in first and "Audio" in first
    assert "The car driving off" in await items.nth(1).inner_text()
    kept = running.store / "sha256" / hashlib.sha256(jpg).hexdigest()[:2]
    assert (kept / hashlib.sha256(jpg).hexdigest()).read_bytes() == jpg

    # A copy comes back through the audited download.
    async with page.expect_download() as downloading:
        await page.get_by_role("button", name="Save a copy of car park.jpg").click()
    download = await downloading.value
    saved = tmp_path / "copy.jpg"
    await download.save_as(saved)
    assert saved.read_bytes() == jpg
    assert await fits_width(page)
    # The screenshot shows the limits a deployment has by default, not the test's.
    defaults = EvidenceDesk.from_settings(Settings(), None).limits
    running.gateway.app.state.evidence.limits = defaults
    await page.reload()
    await page.locator("#evidence-list li.ev-item").nth(1).wait_for()
    await rules.get_by_text("Videos: up to 512 MB").wait_for()
    await _screenshot(section, "portal-evidence.png")

    # Signing out hides the section and its list.
    await page.evaluate("document.dispatchEvent(new Event('rtic:signout'))")
    await section.wait_for(state="hidden")
    assert await page.locator("#evidence-list li").count() == 0


async def test_another_citizens_session_sees_none_of_it(
    running: Running, open_page: OpenPage
) -> None:
    mine, other = running.refs["mine"], running.refs["other"]
    async with httpx.AsyncClient(base_url=running.base) as http:
        sent = await http.post(
            f"/api/cases/{mine}/evidence",
            files={"file": ("mine.png", samples()["photo.png"][0], "image/png")},
            headers=running.citizen(mine),
        )
    assert sent.status_code == 201
    page = await open_page("/portal", None, **PHONE)
    await _as_citizen(page, running, other)
    await page.locator("#evidence-empty").get_by_text("Nothing yet.").wait_for()
    assert await page.locator("#evidence-list li").count() == 0
    # Asking for the other case's file by id from this session gets nothing.
    status = await page.evaluate(
        """async (id) => (await fetch(`/api/evidence/${id}/content`, {headers: {Authorization:
        `Bearer ${sessionStorage.getItem('rtic.portal.token')}`}})).status""",
        sent.json()["evidence_id"],
    )
    assert status == 404


async def test_what_happens_next_shows_the_real_shares_on_a_phone(
    running: Running, open_page: OpenPage
) -> None:
    async with httpx.AsyncClient(base_url=running.base) as http:
        api = (await http.get("/api/portal/outcomes?category=vehicle-crime")).json()
    page = await open_page("/portal", None, **PHONE)
    section = page.locator("#whatif")
    await section.get_by_role("heading", name="What happens next").wait_for()
    await section.get_by_label("What kind of crime?").select_option(label="Vehicle crime")
    basis = page.locator("#whatif-basis")
    await basis.wait_for(timeout=10_000)
    with_outcome = f"{api['outcome']['with_outcome']:,}"
    assert (
        await basis.inner_text()
        == f'Of {with_outcome} crimes of the kind "Vehicle crime" recorded by West Yorkshire '
        "Police in July 2016 and July 2017, this is how they ended:"
    )
    for group in api["outcome"]["groups"]:
        if group["count"]:
            row = page.locator(f"#whatif-shares li[data-group='{group['group']}']")
            assert f"{group['share']}% ({group['count']:,})" in await row.inner_text()
    assert "Open Government Licence v3.0" in await page.locator("#whatif-source").inner_text()
    assert await page.locator("#whatif-caveats li").count() == len(api["caveats"])
    steps = await page.locator("#whatif-steps").inner_text()
    assert "Report it" in steps  # a victim who has not reported yet
    support = await page.locator("#whatif-support").inner_text()
    assert "Victims' Code" in support and "08 08 16 89 111" in support
    assert "Tell your insurer" in await section.inner_text()
    assert await fits_width(page)
    await _screenshot(section, "portal-whatif.png")

    # A hurt witness who has reported it: other steps, other support.
    await section.get_by_role("radio", name="a witness").check()
    await page.locator("input[name='reported'][value='yes']").check()
    await page.locator("input[name='injured'][value='yes']").check()
    await page.locator("#whatif-support").get_by_text("Witness Service").wait_for()
    await asyncio.sleep(0.2)
    steps = await page.locator("#whatif-steps").inner_text()
    assert "Report it" not in steps and "witness statement" in steps
    assert "NHS 111" in await page.locator("#whatif-urgent").inner_text()
    assert "999" in await page.locator("#whatif-urgent").inner_text()
