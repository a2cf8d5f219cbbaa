"""Which input agents take the consumer's fetched batches whole (``streams/transport.py``):
those that are their topic's only reader, which every input topic is: the deadline
book and the trend tables are fed calls and incidents by the input agents themselves
(``Worker.observe``), not by agents of their own on those topics."""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import ConsumerMessage

from rtic.schemas import CallV1, EventKind
from rtic.settings import Settings
from rtic.topics import Topics
from streams.app import BATCHES_BUFFERED, create_app
from streams.pipeline import Output
from streams.transport import FetchedBatch, release
from tests.conftest import make_call


def test_input_topics_read_by_one_agent_are_fed_fetched_batches() -> None:
    settings = Settings(topic_prefix="unit-batches.", batch_max=123)
    app = create_app(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    assert app.batch_topics == frozenset(topics.inputs())
    assert topics.anpr in app.batch_topics and topics.officer_locations in app.batch_topics
    assert app.batch_size == 123
    assert app.held_topics == frozenset(topics.inputs())  # every input agent gives back
    by_topic = {
        name: agent.channel
        for agent in app.agents.values()
        for name in getattr(agent.channel, "topics", ())
        if name in topics.inputs() and agent.name.startswith("agent_")
    }
    assert set(by_topic) == set(topics.inputs())  # each read by its input agent alone
    assert {c.maxsize for c in by_topic.values()} == {BATCHES_BUFFERED}
    readers = [
        agent.name
        for agent in app.agents.values()
        if {topics.calls, topics.incidents} & set(getattr(agent.channel, "topics", ()))
    ]
    assert len(readers) == 2, readers
    assert set(app.rtic_worker.observers) == {topics.calls, topics.incidents}
    assert len(app.rtic_worker.observers[topics.incidents]) == 2  # deadlines, trends


def _message(offset: int, topic: str = "t") -> ConsumerMessage:
    return ConsumerMessage(topic, 0, offset, 0.0, 0, None, b"k", b"v", None)


class _Consumer:
    """What a fetched batch and a message's final acknowledgement call on Faust's
    consumer: the offsets acknowledged are the offsets it may commit."""

    def __init__(self) -> None:
        self.tracked: list[int] = []
        self.acked: list[int] = []

    def track_message(self, m: ConsumerMessage) -> None:
        self.tracked.append(m.offset)

    def ack(self, m: ConsumerMessage) -> bool:
        self.acked.append(m.offset)
        return True


def test_a_fetched_batch_tracks_each_message_once_and_acks_them_all() -> None:
    messages = [_message(o) for o in range(5, 9)]
    for m in messages:
        m.incref(1)  # the worker's reference, as the transport takes it on fetching
    batch = FetchedBatch(messages)
    consumer = _Consumer()
    batch.track(consumer)
    batch.track(consumer)
    assert consumer.tracked == [5, 6, 7, 8] and all(m.tracked for m in messages)
    batch.ack(consumer)
    assert consumer.acked == [5, 6, 7, 8]


def test_a_stream_skipping_a_batch_does_not_let_its_offsets_be_committed() -> None:
    """Issue 14: a stream acknowledges the event it moves on from, processed or not (the
    flow suspended by a stop, ``take_events``' batch cancelled). The worker's reference
    keeps the messages unacknowledged until the output is out (``release``)."""
    consumer = _Consumer()
    chunk = [_message(o) for o in range(10, 13)]
    for m in chunk:
        m.incref(1)  # the worker's
    chunk[-1].incref(1)  # the stream's, on the carrier
    assert not chunk[-1].ack(consumer)  # the stream moves on (skipped: never processed)
    assert consumer.acked == []
    FetchedBatch(chunk).ack(consumer)  # output delivered
    assert consumer.acked == [10, 11, 12]

    single = _message(40, "calls")
    single.incref(2)  # the input agent's stream and the trend agent's
    single.incref(1)  # the worker's (``_drain_messages``, a held topic)
    single.ack(consumer)  # take_events' finally, the batch cancelled
    single.ack(consumer)  # the trend agent
    assert 40 not in consumer.acked
    release(consumer, [single])  # the input agent, once its output is out
    assert consumer.acked[-1] == 40


def test_observers_get_the_batch_events_with_their_partition_and_a_failing_one_is_contained() -> (
    None
):
    """``Worker.observe``: what the input agent passes on besides the pipeline's output (the
    deadline book and the trend tables): the events the pipeline validated
    (``Output.events``, bad ones left out: tests/unit/streams/test_pipeline.py), in order,
    to every observer of the topic. An observer that raises does not stop the others or
    the batch; observers of another topic get nothing."""
    settings = Settings(topic_prefix="unit-observers.")
    app = create_app(settings)
    worker = app.rtic_worker
    topics = Topics.with_prefix(settings.topic_prefix)
    worker.observers.clear()
    seen: list[tuple[int, str]] = []
    incidents: list[Any] = []

    def failing(partition: int, event: Any) -> None:
        raise ValueError("an observer's own bug")

    worker.observe(EventKind.CALL, failing)
    worker.observe(EventKind.CALL, lambda partition, call: seen.append((partition, call.call_id)))
    worker.observe(EventKind.INCIDENT, lambda partition, inc: incidents.append(inc))
    calls = [CallV1.model_validate(make_call()) for _ in range(3)]
    outs = [Output(events=[(3, calls[0]), (3, calls[1])]), Output(events=[(3, calls[2])])]
    worker._notify(topics.calls, outs)
    assert seen == [(3, c.call_id) for c in calls]
    failed = worker.metrics.batch_errors.labels("observer_failed")._value.get()
    assert failed == 3
    assert incidents == []
