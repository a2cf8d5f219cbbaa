"""What the pages' browser tests share: Chromium, viewports, a watch on each page, screenshots.

``browser_pages(base_url, ticket_for)`` opens pages of one server (the gateway test
double or the real engine) as a given role and subject, with a login ticket in the
address as ``rtic up`` prints it (``?ticket=``, exchanged by the page), each in its own browser
context (en-GB, Europe/London), and fails the test if any page raised a script
error, was refused something by the Content-Security-Policy, or fetched from
another origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rtic.settings import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESK = {"width": 1600, "height": 1000}
PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}

PAGES_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
        reason="Debian chromium is not installed (make test installs it)",
    ),
]


@dataclass
class Watch:
    """What went wrong in a page: script errors, CSP refusals, requests to another origin."""

    origin: str
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: (
                self.errors.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text
                else None
            ),
        )
        page.on(
            "request",
            lambda req: (
                None
                if req.url.startswith((self.origin, "ws://127.0.0.1", "data:"))
                else self.outside.append(req.url)
            ),
        )


OpenPage = Callable[..., Awaitable[Any]]


@contextlib.asynccontextmanager
async def browser_pages(
    base: str, ticket_for: Callable[[str, str], str]
) -> AsyncIterator[OpenPage]:
    """``await open_page(path, role, sub, **context)``: a page of ``base`` as that person
    (``role`` None: no ticket); the pages are checked when the block ends, and no page
    may keep a ticket or a token in its address."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        watches: list[Watch] = []
        pages: list[Any] = []

        async def open_(path: str, role: str | None, sub: str = "", **context: Any) -> Any:
            context.setdefault("viewport", DESK)
            ctx = await browser.new_context(locale="en-GB", timezone_id="Europe/London", **context)
            page = await ctx.new_page()
            watch = Watch(base)
            watch.attach(page)
            watches.append(watch)
            ticket = f"?ticket={ticket_for(role, sub)}" if role else ""
            await page.goto(f"{base}{path}{ticket}")
            pages.append(page)
            return page

        try:
            yield open_
            for page in pages:
                if not page.is_closed():
                    assert "ticket=" not in page.url and "token=" not in page.url, page.url
        finally:
            await browser.close()
        for watch in watches:
            assert not watch.errors, f"page errors: {watch.errors}"
            assert not watch.outside, f"the page fetched from another origin: {watch.outside}"


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 (polling what the double recorded)
            await asyncio.sleep(0.05)


async def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / name))


async def fits_width(page: Any) -> bool:
    return bool(
        await page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )
