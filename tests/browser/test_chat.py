"""Webchat in two browsers against the real engine: a citizen on the portal (phone
viewport) and a contact handler on /handler.

The citizen's session is made here (a token naming one case, in sessionStorage as
portal.html describes): the report and session API is the portal's part. The
handler takes the chat from the queue, both sides see each message with its
delivery state, the conversation is still there after the citizen reloads, the
handler turns it into a call and ends it.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import orjson
import pytest

from rtic.casework import format_case_ref
from tests.browser.browsing import PAGES_MARKS, SCREENSHOTS, OpenPage, browser_pages, fits_width
from tests.engine import Engine

pytestmark = PAGES_MARKS

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


@pytest.fixture
async def open_page(engine: Engine) -> AsyncIterator[OpenPage]:
    async with browser_pages(engine.base_url, engine.ticket) as open_:
        yield open_


async def test_a_citizen_and_a_handler_chat_in_their_browsers(
    engine: Engine, open_page: OpenPage
) -> None:
    ref = format_case_ref(engine.settings.force_code, 2026, random.randrange(7_000_000, 7_999_999))
    citizen_token = engine.token("citizen", f"cit-{ref}", cases=[ref])
    citizen = await open_page("/portal", None, **PHONE)
    session = orjson.dumps({"token": citizen_token, "case_ref": ref}).decode()
    await citizen.add_init_script(
        f"(() => {{ const s = {session}; sessionStorage.setItem('rtic.portal.token', s.token);"
        " sessionStorage.setItem('rtic.portal.case_ref', s.case_ref); })();"
    )
    await citizen.reload()
    chat = citizen.locator("#chat")
    await chat.get_by_role("heading", name="Talk to us").wait_for()
    await chat.get_by_text("Nobody is chatting yet").wait_for()

    handler = await open_page("/handler", "contact_handler", "CH-BROWSER")
    await handler.get_by_text("Connected").wait_for()

    await chat.get_by_label("Your message").fill("Someone took my bike from outside the shop")
    await chat.get_by_role("button", name="Send message").click()
    mine = chat.locator("li.mine").filter(has_text="Someone took my bike")
    await mine.get_by_text("Delivered").wait_for()
    await chat.get_by_text("Waiting for a contact handler").wait_for()

    take = handler.get_by_role("button", name=f"Take the chat of case {ref}")
    await take.click()
    conversation = handler.locator("#conversation")
    await conversation.get_by_role("heading", name=f"Conversation: case {ref}").wait_for()
    await conversation.get_by_text("Someone took my bike from outside the shop").wait_for()
    await chat.get_by_text("is with you").wait_for()

    await handler.get_by_label("Your reply").fill("I'm sorry. When did it happen?")
    await handler.get_by_role("button", name="Send reply").click()
    reply = conversation.locator("li.mine").filter(has_text="When did it happen?")
    await reply.get_by_text("Delivered").wait_for()
    answer = chat.locator("li").filter(has_text="When did it happen?")
    await answer.get_by_text("Handler ").wait_for()
    assert "CH-BROWSER" not in (await chat.inner_text())
    await chat.get_by_label("Your message").fill("About ten minutes ago")
    await chat.get_by_role("button", name="Send message").click()
    await conversation.get_by_text("About ten minutes ago").wait_for()
    await chat.locator("li.mine").filter(has_text="About ten").get_by_text("Delivered").wait_for()

    assert await fits_width(citizen)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await citizen.screenshot(path=str(SCREENSHOTS / "portal-chat.png"))
    await handler.screenshot(path=str(SCREENSHOTS / "handler.png"))

    # (docs/screenshots/ has copies of these two, taken by this test.)
    # History after a reload: the conversation as it was, in order.
    await citizen.reload()
    await chat.get_by_text("About ten minutes ago").wait_for()
    texts = await chat.locator("li .text").all_inner_texts()
    assert texts == [
        "Someone took my bike from outside the shop",
        "I'm sorry. When did it happen?",
        "About ten minutes ago",
    ]

    await handler.get_by_text("Turn this chat into a call").click()
    await handler.get_by_label("What it is about").select_option("theft")
    await handler.get_by_label("Grade (if known)").select_option("3")
    await handler.get_by_role("button", name="Make the call").click()
    await handler.get_by_text(f"made for case {ref}").wait_for(timeout=15_000)

    await handler.get_by_role("button", name="End this chat").click()
    await chat.get_by_text("The chat has ended").wait_for()
    await handler.get_by_text(f"Chat of case {ref} ended").wait_for()


async def test_the_handler_page_without_a_token_says_how_to_get_one(open_page: OpenPage) -> None:
    page = await open_page("/handler", None)
    await page.get_by_text("rtic token --link --role contact_handler").wait_for()


async def test_an_officer_token_on_the_handler_page_is_refused_plainly(
    open_page: OpenPage,
) -> None:
    page = await open_page("/handler", "officer", "OFF-X")
    await page.get_by_text("needs the contact_handler role").wait_for()
