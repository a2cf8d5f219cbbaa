"""Which input agents take the consumer's fetched batches whole (``streams/transport.py``):
those that are their topic's only reader. Incidents are also read by the deadline
and trend agents, calls by the trend agent (streams/trends.py), so they keep Faust's
per-message delivery."""

from __future__ import annotations

from rtic.settings import Settings
from rtic.topics import Topics
from streams.app import BATCHES_BUFFERED, create_app
from streams.transport import FetchedBatch


def test_input_topics_read_by_one_agent_are_fed_fetched_batches() -> None:
    settings = Settings(topic_prefix="unit-batches.", batch_max=123)
    app = create_app(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    assert app.batch_topics == frozenset(topics.inputs()) - {topics.incidents, topics.calls}
    assert topics.anpr in app.batch_topics and topics.officer_locations in app.batch_topics
    assert app.batch_size == 123
    by_topic = {
        name: agent.channel
        for agent in app.agents.values()
        for name in getattr(agent.channel, "topics", ())
        if name in topics.inputs() and agent.name.startswith("agent_")
    }
    assert by_topic[topics.anpr].maxsize == BATCHES_BUFFERED
    assert by_topic[topics.incidents].maxsize is None  # Faust's buffer of messages
    assert by_topic[topics.calls].maxsize is None


class _Message:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = "t", 0, offset
        self.tracked = False


class _Consumer:
    """What a fetched batch calls on Faust's consumer."""

    def __init__(self) -> None:
        self.tracked: list[int] = []
        self.acked: list[int] = []

    def track_message(self, m: _Message) -> None:
        self.tracked.append(m.offset)

    def ack(self, m: _Message) -> None:
        self.acked.append(m.offset)


def test_a_fetched_batch_tracks_each_message_once_and_acks_them_all() -> None:
    messages = [_Message(o) for o in range(5, 9)]
    batch = FetchedBatch(messages)  # type: ignore[arg-type]
    consumer = _Consumer()
    batch.track(consumer)
    batch.track(consumer)
    assert consumer.tracked == [5, 6, 7, 8] and all(m.tracked for m in messages)
    batch.ack(consumer)
    assert consumer.acked == [5, 6, 7, 8]
    assert len(batch) == 4 and repr(batch) == "<FetchedBatch t[0]@5..8>"
