"""The revocation cache: refreshed from the store, the last list kept when the database
is away, and the core told on change."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from push.metrics import GatewayMetrics
from push.revocations import RevocationCache
from records import MemoryRecords
from records.protocols import Revocations
from rtic.schemas import Role
from rtic.tokens import Principal
from tests.conftest import NOW

TOKEN = Principal("an-1", Role.RTIC_ANALYST, jti="t1", issued_at=NOW)


async def test_a_revoked_token_is_refused_after_the_next_refresh(records: MemoryRecords) -> None:
    cache = RevocationCache(records.revocations)
    changes: list[Revocations] = []
    cache.on_change = changes.append
    assert await cache.refresh() and not cache.refuses(TOKEN)
    assert changes == []  # nothing changed: the core is not bothered
    await records.revocations.revoke(jti="t1", sub=None, by="sup", reason="lost", at=NOW)
    assert not cache.refuses(TOKEN)  # cached until the next refresh
    await cache.refresh()
    assert cache.refuses(TOKEN) and changes == [cache.current]
    other = Principal("an-1", Role.RTIC_ANALYST, jti="t2", issued_at=NOW)
    assert not cache.refuses(other)


async def test_revoking_a_subject_refuses_their_tokens_issued_until_then(
    records: MemoryRecords,
) -> None:
    cache = RevocationCache(records.revocations)
    await records.revocations.revoke(
        jti=None, sub="an-1", by="sup", reason="left", at=NOW + timedelta(minutes=1)
    )
    await cache.refresh()
    assert cache.refuses(TOKEN)
    fresh = Principal("an-1", Role.RTIC_ANALYST, jti="t9", issued_at=NOW + timedelta(hours=1))
    assert not cache.refuses(fresh)
    old_style = Principal("an-1", Role.RTIC_ANALYST, issued_at=NOW)  # no jti
    assert cache.refuses(old_style)


async def test_the_last_list_stays_in_force_when_the_database_is_away(
    records: MemoryRecords,
) -> None:
    metrics = GatewayMetrics()
    cache = RevocationCache(records.revocations, metrics)
    await records.revocations.revoke(jti="t1", sub=None, by="sup", reason="x", at=NOW)
    await cache.refresh()

    async def away() -> Revocations:
        raise ConnectionError("database away")

    records.revocation_store.revocations = away  # type: ignore[method-assign]
    assert not await cache.refresh()
    assert cache.refuses(TOKEN)
    assert metrics.value("rtic_gateway_revocation_refreshes_total", result="failed") == 1
    assert metrics.value("rtic_gateway_revocation_refreshes_total", result="ok") == 1


async def test_without_a_store_nothing_is_revoked() -> None:
    cache = RevocationCache(None)
    assert not await cache.refresh() and not cache.refuses(TOKEN)


async def test_it_refreshes_on_its_own_every_period(records: MemoryRecords) -> None:
    cache = RevocationCache(records.revocations, refresh_s=0.01)
    running = asyncio.create_task(cache.run())
    try:
        await records.revocations.revoke(jti="t1", sub=None, by="sup", reason="x", at=NOW)
        for _ in range(100):
            if cache.refuses(TOKEN):
                break
            await asyncio.sleep(0.01)
        assert cache.refuses(TOKEN)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
