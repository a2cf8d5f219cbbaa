"""Faust's aiokafka transport, tuned: a short fetch wait, true ends of partitions,
and fetched batches handed to batch agents whole.

**Fetch wait.** faust-streaming 0.15 creates its consumer with
``fetch_max_wait_ms=1500`` hard-coded. Apache Kafka answers a fetch as soon as
there is data, but Tansu 0.6 holds the fetch for the whole wait: measured here
with aiokafka alone, a read paced every 100 ms waits p50 378 ms / p95 690 ms
with 1,500 ms, and 3 ms / 8 ms with 10 ms. So the engine's app uses this
transport, whose consumer waits at most ``rtic.kafka.FETCH_MAX_WAIT_MS`` (20 ms; 10
was worse under load, see there); on an idle topic that costs one small fetch
request per wait.

**Fetched batches whole.** Faust delivers every message on its own: four tasks
per message (``Service.wait_first``), the conductor's decode and queue put,
then the stream's event bookkeeping; profiled under a backlog of one plate
read per message that machinery took more of the worker's time than the
engine's own work (docs/benchmarks.md, "Single reads at batch speed"). A topic
named in ``RticApp.batch_topics`` whose only subscriber is one agent gets,
instead, one event per partition per fetch (at most ``batch_max`` messages):
its value is a ``FetchedBatch`` of the Kafka messages, its message the last
of them. The agent (``streams/app.py``) processes the batch, sends its output,
then acknowledges every message of it (``FetchedBatch.ack``): offsets are
committed after processing, as before (at-least-once). Every other topic (and
a batch topic another agent also reads) keeps Faust's per-message delivery.
Flow control is Faust's: delivery waits while the flow is suspended
(rebalancing) or the producer's buffer is full, and the agent's channel holds
at most ``maxsize`` batches (``streams/app.py`` sets it), so a backlog is not
read into memory faster than it is processed.

**The worker's own reference.** Faust acknowledges a message when every stream
that got it has moved on, and a stream moves on from events it did not process:
one that arrives while the flow is suspended (a stopping worker, a rebalance) is
acknowledged unseen, and ``take_events`` acknowledges its whole batch in a
``finally`` that runs when the generator is closed, so a batch cancelled half way
(or an agent that raised) is acknowledged too; and an event cleared from one
subscriber's queue keeps its message unacknowledged for ever, so a stopping
worker waited on it without end. Acknowledged offsets are committed, and what they
held was never processed: after such a stop the next worker did not see it (issue
14: a read on ``rtic.anpr.v1``, offset committed, no trail in Redis). So the
messages of the topics in ``RticApp.held_topics`` (the input agents' topics) carry
one more reference, the worker's, taken here when they are fetched and given back
by the agent (``FetchedBatch.ack``, ``release``) only once the batch's output is
delivered: however Faust's streams acknowledge, such a message is never done, and
its offset never committed, before its output is out; a message a stream skipped
is read again from the last commit once nothing is working on it for
``SKIPPED_S`` (``_Consumer._refetch_skipped``), since Faust does not always fetch it
again. A stopping worker waits
``RticApp.drain_s`` at most for the batches its input agents are working on (and
the messages of other agents' topics: ``_Consumer.wait_empty``), then commits what
is done and stops; the rest is read again by the next worker.

**No gaps on input topics.** Faust takes a jump in a partition's offsets between
two records for a gap (compaction, transaction markers) and counts the offsets in
between as acknowledged. The input topics have no gaps, and a stopping worker's
fetcher, sought back to the last commit, saw a record of a fetch already under way
far past it: the "gap" covered the batch being worked on when the stop came, and
the final commit passed it (events lost at a SIGTERM: docs/reliability.md). On the
held topics such a jump is read again from the first missing offset instead
(``_Consumer._read_again``); the same jump twice is a gap, as Faust has it.

**Commits under load.** Before it commits, Faust flushes the producer, and its
buffer's flush (the tables' changelog writes, ``send_soon``) waits until the buffer
is *empty*; the offsets it then commits were taken before the flush. Under a steady
stream of calls the trend tables refill the buffer as fast as it drains: measured
on the suite's Tansu at 300 reads and 30 calls a second, one commit's flush took
3.2 s, and a new worker working through the backlog left by a killed one committed
nothing for 7 s, so a ``kill -9`` then had thousands of reads done again. ``_Producer.flush``
flushes the buffer only up to what it held when the commit began (the buffer is
sent in order, one message at a time, so those are the first sent); what is added meanwhile comes from
messages not yet acknowledged, whose offsets this commit does not take, so a
commit still follows every changelog write of what it commits.

**True ends.** Tansu 0.6 (in memory) answers ListOffsets(latest) with the last
record *batch's* base offset + 1, not the last offset + 1: three batches of five
records end at 11, not 15 (measured with aiokafka alone). Faust recovers a table
from its changelog up to that end and then stops reading it, so the rest of the
changelog's last batch was lost on every restart (counts of the trend table came
back short: tests/e2e/test_trends.py). ``_highwaters`` here reads the batch at
``end - 1`` again and takes the offset after its last record; against Apache Kafka
that batch ends at ``end - 1`` already and nothing changes.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from rtic.kafka import FETCH_MAX_WAIT_MS

# Seconds an input partition's commit may wait on a message no agent is working on
# before it is read again (``_Consumer._refetch_skipped``).
SKIPPED_S = 5.0


async def true_ends(bootstrap_servers: Any, ends: Mapping[Any, int]) -> dict[Any, int]:
    """``ends`` (partition -> end offset as ListOffsets answered) with each end moved past
    the last record of the batch that holds ``end - 1`` (see the module's docstring)."""
    out = dict(ends)
    asked = {TopicPartition(tp.topic, tp.partition): tp for tp, end in ends.items() if end}
    if not asked:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(asked))
        for tp, original in asked.items():
            consumer.seek(tp, ends[original] - 1)
        found = await consumer.getmany(*asked, timeout_ms=2000)
        for tp, records in found.items():
            if records:
                original = asked[tp]
                out[original] = max(out[original], records[-1].offset + 1)
    finally:
        await consumer.stop()
    return out


def _in_flight(consumer: Any) -> weakref.WeakSet[Message]:
    """The messages input agents are working on (what a stop waits for)."""
    found: weakref.WeakSet[Message] | None = consumer.__dict__.get("rtic_in_flight")
    if found is None:
        found = consumer.__dict__["rtic_in_flight"] = weakref.WeakSet()
    return found


def hold(consumer: Any, messages: Iterable[Message]) -> None:
    """Messages an input agent starts on: a stop waits for them (``wait_empty``)."""
    _in_flight(consumer).update(messages)


def release(consumer: Any, messages: Iterable[Message]) -> None:
    """Give back the worker's reference on messages whose output is delivered (see the
    module's docstring): each is acknowledged once its streams are done with it too."""
    in_flight = _in_flight(consumer)
    for m in messages:
        in_flight.discard(m)
        m.ack(consumer)


class FetchedBatch:
    """The messages of one partition from one fetch, for one batch agent (each holds
    the worker's reference until ``ack``)."""

    __slots__ = ("messages",)

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages

    def __len__(self) -> int:
        return len(self.messages)

    def __repr__(self) -> str:
        first, last = self.messages[0], self.messages[-1]
        return f"<FetchedBatch {first.topic}[{first.partition}]@{first.offset}..{last.offset}>"

    def track(self, consumer: Any) -> None:
        """Count the messages as taken and not yet acknowledged (what a stream does
        for each event it takes): a rebalance or a stop waits for them."""
        for m in self.messages:
            if not m.tracked:
                m.tracked = True
                consumer.track_message(m)
        hold(consumer, self.messages)

    def ack(self, consumer: Any) -> None:
        """Every message processed and its output delivered: the worker's references
        given back, so their offsets may be committed."""
        release(consumer, self.messages)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts
        return consumer

    async def _highwaters(self, partitions: Any) -> Mapping[Any, int]:
        ends = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return ends
        servers = self._ensure_consumer()._client._bootstrap_servers
        return await true_ends(servers, ends)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_empty(self) -> None:
        """Faust's wait for the messages being processed (a stop, a rebalance), for
        ``app.drain_s`` seconds at most: then what is done is committed and the rest
        is left to be read again (see the module's docstring)."""
        limit: float = getattr(self.app, "drain_s", 10.0)
        deadline = time.monotonic() + limit
        while not self.should_stop and self._processing():
            await self.commit()
            waiting = self._processing()
            if not waiting:
                break
            if time.monotonic() >= deadline:
                topics = sorted({m.topic for m in waiting})
                self.log.warning(
                    "%d messages (%s) still in flight after %.1f s: not committed, they will "
                    "be read again",
                    len(waiting),
                    ", ".join(topics),
                    limit,
                )
                break
            await self._wait_for_ack(timeout=1)
            self._clean_unacked_messages()
        await self.commit_and_end_transactions()

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        """Faust's commit, then a look for messages a stream skipped (see
        ``_refetch_skipped``)."""
        did = await super().commit(topics, start_new_transaction=start_new_transaction)
        await self._refetch_skipped()
        return bool(did)

    async def _refetch_skipped(self) -> None:
        """Read again from the last commit a partition of an input topic whose message at
        the commit stays unacknowledged while later ones are done, and no input agent
        is working on it, for ``SKIPPED_S``: a stream skipped it unseen (an event of a
        rebalance's old generation, or taken while the flow was suspended) and Faust
        does not always fetch it again. Commits of that partition would wait on it for
        ever; reading again costs the later messages a second processing."""
        held: frozenset[str] = getattr(self.app, "held_topics", frozenset())
        if not held or self.should_stop or not self.flow_active:
            return  # stopping or rebalancing: the next assignment reads from the commit
        stalled: dict[TP, float] = self.__dict__.setdefault("rtic_stalled", {})
        now = time.monotonic()
        in_flight = list(_in_flight(self))
        assigned = self.assignment()
        for tp in [tp for tp in list(self._acked) if tp.topic in held]:
            acked = self._acked.get(tp)
            committed = self._committed_offset.get(tp)
            if not acked or committed is None or min(acked) <= committed or tp not in assigned:
                stalled.pop(tp, None)
                continue
            head = min(acked)
            if any(m.tp == tp and committed <= m.offset < head for m in in_flight):
                stalled.pop(tp, None)  # being worked on (a batch held on Redis, say)
                continue
            since = stalled.setdefault(tp, now)
            if now - since < SKIPPED_S:
                continue
            stalled.pop(tp, None)
            self.log.warning(
                "%s: offsets %d..%d skipped unprocessed by a stream; reading again from %d",
                tp,
                committed,
                head - 1,
                committed,
            )
            try:
                await self.seek(tp, committed)
            except Exception as exc:  # the next commit looks again
                self.log.warning("%s: could not read again from %d: %r", tp, committed, exc)

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next offset to commit, with its off-by-one closed for the input
        topics: Faust commits past the message *at* the last commit when it alone is
        unacknowledged (it only refuses a hole of two or more), and such a message
        is one a stream skipped unseen (see the module's docstring). The input topics
        are the engine's own, with no gaps in their offsets, so an acknowledged
        offset past the commit means the one at the commit is not done yet."""
        held: frozenset[str] = getattr(self.app, "held_topics", frozenset())
        if tp.topic in held:
            acked = self._acked[tp]
            committed = self._committed_offset[tp]
            if acked and committed is not None and min(acked) > committed:
                return None
        return cast(int | None, super()._new_offset(tp))

    def _processing(self) -> list[Message]:
        """The unacknowledged messages worth waiting for: those an input agent is working
        on, and those of other agents' topics. A message of an input topic the input
        agent is not working on (done with, or never given: a queue cleared by the stop)
        waits on a stream that will not move, and is read again anyway."""
        held: frozenset[str] = getattr(self.app, "held_topics", frozenset())
        in_flight = _in_flight(self)
        return [
            m
            for m in self._unacked_messages
            if not m.acked and (m in in_flight or m.topic not in held)
        ]

    async def _read_again(self, tp: TP, first: int, found: int) -> bool:
        """Offsets ``first`` to ``found - 1`` of an input topic's partition were skipped
        between two fetches: read again from ``first``. Faust takes such a jump for a
        gap (compaction, transaction markers) and counts the missing offsets as
        acknowledged, so a commit passes them; the engine's input topics have no gaps,
        so they are records the consumer took from the broker and Faust dropped
        without handing them to an agent (``Consumer.getmany`` drops the rest of a
        fetch when the flow stops or the generation changes, and the records of a
        partition that is not active), and committing past them loses them.

        False (a gap after all, Faust's way) when the same jump comes back after
        reading again: the broker has no records there."""
        tried: dict[TP, tuple[int, int]] = self.__dict__.setdefault("rtic_read_again", {})
        if tried.get(tp) == (first, found):
            self.log.warning("%s: no records at offsets %d..%d: a gap", tp, first, found - 1)
            del tried[tp]
            return False
        tried[tp] = (first, found)
        self.log.warning(
            "%s: offsets %d..%d fetched but not delivered; reading again from %d",
            tp,
            first,
            found - 1,
            first,
        )
        try:
            await self.seek(tp, first)
        except Exception as exc:  # the commit does not pass them: read again later
            self.log.warning("%s: could not read again from %d: %r", tp, first, exc)
        return True

    def _batch_channel(self, tp: TP, batch_topics: frozenset[str]) -> Any | None:
        """The channel of the one agent reading this batch topic, or None."""
        if tp.topic not in batch_topics:
            return None
        channels = self.app.topics._tp_index.get(tp)  # type: ignore[attr-defined]
        if not channels or len(channels) != 1:
            return None
        return next(iter(channels))

    async def _deliver_batch(self, channel: Any, messages: list[Message], size: int) -> None:
        """A partition's messages from one fetch into its agent's channel, as events of
        at most ``size`` messages (the conductor's flow control, per batch)."""
        app = self.app
        acquire_flow_control = app.flow_control.acquire
        wait_until_producer_ebb = app.producer.buffer.wait_until_ebb
        for m in messages:
            m.incref(1)  # the worker's reference: FetchedBatch.ack gives it back
        for i in range(0, len(messages), size):
            chunk = messages[i : i + size]
            await acquire_flow_control()
            await wait_until_producer_ebb()
            carrier = chunk[-1]
            # The stream's reference: it acknowledges the carrier when it moves on,
            # processed or skipped, which alone no longer lets its offset be committed.
            carrier.incref(1)
            await channel.queue.put(
                channel._create_event(None, FetchedBatch(chunk), None, message=carrier)
            )

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover
        """Faust's ``Consumer._drain_messages`` (0.15.3), with a partition's messages
        of a batch topic handed over whole after each fetch."""
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Any, self)._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        batch_topics: frozenset[str] = getattr(self.app, "batch_topics", frozenset())
        batch_size: int = getattr(self.app, "batch_size", 500)
        batch_channel = self._batch_channel
        held_topics: frozenset[str] = getattr(self.app, "held_topics", frozenset())
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                # Sleeping because sometimes getmany is called in a loop
                # never releasing to the event loop
                await self.sleep(0)
                if not self.should_stop:
                    runs: dict[TP, tuple[Any, list[Message]]] = {}
                    channels: dict[TP, Any] = {}
                    reread: set[TP] = set()  # held partitions read again: the rest waits
                    async for tp, message in ait:
                        if tp in reread:
                            continue
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            # We have a gap in income messages
                            if (
                                gap > 1
                                and r_offset
                                and message.topic in held_topics
                                and await self._read_again(tp, r_offset + 1, offset)
                            ):
                                reread.add(tp)  # not a gap: see _read_again
                                continue
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if tp not in channels:
                                channels[tp] = batch_channel(tp, batch_topics)
                            channel = channels[tp]
                            if channel is not None:
                                run = runs.get(tp)
                                if run is None:
                                    run = runs[tp] = (channel, [])
                                run[1].append(message)
                                set_read_offset(tp, offset)
                                continue
                            num_since_yield += 1
                            if num_since_yield > yield_every:
                                await sleep(0)
                                num_since_yield = 0
                            if message.topic in held_topics:
                                message.incref(1)  # the worker's: its agent gives it back
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev(
                                "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                offset,
                                message.key,
                                message.value,
                            )
                    for channel, messages in runs.values():
                        await self.wait_first(
                            self._deliver_batch(channel, messages, batch_size),
                            self.suspend_flow.wait(),
                        )
                    unset_flag(CONSUMER_FETCHING)

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class _Producer(faust_aiokafka.Producer):
    async def flush(self) -> None:
        """Faust's flush, with the buffer flushed up to what it held when called (see
        the module's docstring, "Commits under load"): what is added meanwhile is for
        later messages, whose offsets this commit does not take."""
        buffer = self.buffer
        # Sent in order, one at a time: the one being sent (out of the queue, not in
        # ``size``) then those queued; Faust counts at most one per message sent.
        await buffer.flush_atmost(buffer.size + 1)
        if self._producer is not None:
            await self._producer.flush()  # aiokafka's: the batches there when called
        for transaction_producer in self._transaction_producers.values():
            await transaction_producer.flush()


class TunedTransport(faust_aiokafka.Transport):
    """The aiokafka transport with the consumer and producer above."""

    Consumer = _Consumer
    Producer = _Producer


class RticApp(faust.App):
    """A Faust app whose Kafka consumer uses ``TunedTransport``.

    ``batch_topics`` names the topics whose messages go to their (one) agent as
    ``FetchedBatch`` events of at most ``batch_size`` messages; set them before
    the app starts (``set_batch_topics``). ``held_topics`` name the topics whose
    agents give back the worker's reference on each message (``set_held_topics``).
    """

    batch_topics: frozenset[str] = frozenset()
    batch_size: int = 500
    held_topics: frozenset[str] = frozenset()
    drain_s: float = 10.0

    def set_batch_topics(self, topics: Iterable[str], size: int) -> None:
        self.batch_topics = frozenset(topics)
        self.batch_size = size

    def set_held_topics(self, topics: Iterable[str], drain_s: float) -> None:
        """Topics whose messages carry the worker's reference until their agent gives it
        back (``release``, ``FetchedBatch.ack``); how long a stop waits for them."""
        self.held_topics = frozenset(topics)
        self.drain_s = drain_s

    def _new_transport(self) -> Any:
        return TunedTransport(self.conf.broker_consumer, self)
