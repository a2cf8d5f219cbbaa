"""The flush before a commit (``streams/transport.py``, "Commits under load"): Faust's
producer buffer (the tables' changelog writes) is flushed up to what it held when the
commit began, so a buffer refilled as fast as it drains no longer holds the commit,
and every write buffered before it is sent first, in order."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rtic.settings import Settings
from streams.app import create_app
from streams.transport import _Producer

SEND_S = 0.002  # each buffered message's send (a changelog write handed to aiokafka)


async def _buffer_kept_full(producer: Any, sent: list[int]) -> tuple[asyncio.Task[None], list[int]]:
    """Faust's buffer draining in its own task, and a writer adding a message for each
    one sent (trend tables under a steady stream of calls); what was put so far."""
    buffer = producer.buffer

    async def send_pending(fut: Any) -> None:
        await asyncio.sleep(SEND_S)
        sent.append(fut)

    buffer._send_pending = send_pending
    put: list[int] = []
    for i in range(50):
        buffer.put(i)
        put.append(i)

    async def writer() -> None:
        i = len(put)
        while True:
            await asyncio.sleep(SEND_S)
            buffer.put(i)
            put.append(i)
            i += 1

    await buffer.start()
    return asyncio.create_task(writer()), put


async def _stop(producer: Any, writer: asyncio.Task[None]) -> None:
    writer.cancel()
    pending = producer.buffer.pending
    while not pending.empty():  # Faust's stop would flush them (and refuse, stopping)
        pending.get_nowait()
    await producer.buffer.stop()


async def test_the_commit_flush_sends_what_was_buffered_and_returns_under_load() -> None:
    producer = create_app(Settings(topic_prefix="unit-flush.")).producer
    assert isinstance(producer, _Producer)
    sent: list[int] = []
    writer, put = await _buffer_kept_full(producer, sent)
    try:
        await asyncio.sleep(0.05)
        before = list(put)  # buffered or sent when the commit begins
        started = time.monotonic()
        await asyncio.wait_for(producer.flush(), 5)
        took = time.monotonic() - started
        assert set(before) <= set(sent)  # every write before the commit is out
        assert sent == sorted(sent)  # in order
        assert producer.buffer.size > 0  # still refilled: Faust's flush would wait on
        assert took < 2.0
    finally:
        await _stop(producer, writer)


async def test_faust_flush_waits_for_an_empty_buffer_that_never_comes() -> None:
    """Why: Faust's own buffer flush under the same load does not return (the commit
    timer measured 3 to 7 s per commit in the worker, docs/reliability.md)."""
    producer = create_app(Settings(topic_prefix="unit-flush-faust.")).producer
    sent: list[int] = []
    writer, _ = await _buffer_kept_full(producer, sent)
    try:
        flushing = asyncio.create_task(producer.buffer.flush())
        await asyncio.sleep(2.0)
        assert not flushing.done()
        flushing.cancel()
    finally:
        await _stop(producer, writer)
