"""The worker's Prometheus metrics (prometheus-client), served at ``/metrics``.

Two sources, both cheap on the hot path:

- counters the pipeline already keeps (``PipelineStats``, ``RuleStats``) are
  read when Prometheus scrapes, by ``PipelineCollector``: events received per
  kind, dead letters per source topic, evaluations, alerts and errors per
  rule, alerts snoozed per rule, batches enriched only partly;
- what only the agents in ``streams/app.py`` see is recorded by them through
  ``WorkerMetrics``, once per batch (not per message): events in and out per
  topic, dead letters by kind of reason, batch latency, and Redis round trips
  (counted at the connection, see ``count_redis_round_trips``).

Each app has its own ``CollectorRegistry``, so tests can build several apps in
one process. Names follow Prometheus' conventions (``_total``, ``_seconds``).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

# Batch latency buckets (s): a batch takes milliseconds when all is well and seconds
# when Redis or the broker is slow.
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Dead-letter reasons start with the exception's name (``DecodeError: ...``); the label
# is one of a few kinds so that a strange message cannot grow the number of series.
_REASON_KINDS = (
    ("DecodeError", "decode"),
    ("ValidationFailed", "validation"),
    ("ValidationError", "validation"),
    ("ContractError", "contract"),
    ("internal error", "internal"),
)


def reason_kind(reason: str) -> str:
    """The kind of a dead letter's reason: decode, validation, contract, internal, other."""
    return next((kind for prefix, kind in _REASON_KINDS if reason.startswith(prefix)), "other")


class WorkerMetrics:
    """What the agents record, in the app's own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events_in = Counter(
            "rtic_worker_events_in",
            "Messages taken from each input topic.",
            ["topic"],
            registry=self.registry,
        )
        self.events_out = Counter(
            "rtic_worker_events_out",
            "Messages sent to each output topic (enriched, alerts, dead letters).",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "rtic_worker_dead_letters",
            "Messages sent to the dead-letter topic, by kind of reason.",
            ["reason"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "rtic_worker_batch_seconds",
            "Seconds from taking a batch to its output being delivered, per input topic.",
            ["topic"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.redis_round_trips = Counter(
            "rtic_worker_redis_round_trips",
            "Requests written to Redis (a pipelined batch is one).",
            registry=self.registry,
        )
        self.batch_errors = Counter(
            "rtic_worker_batch_errors",
            "Batches the pipeline failed on, by outcome (retried or dead-lettered), and events "
            "an observer (deadline book, trend tables) failed on (observer_failed).",
            ["outcome"],
            registry=self.registry,
        )

    def sent(self, messages: Iterable[tuple[str, Any, bytes]], dead_letter_topic: str) -> None:
        """Count a batch's output: per topic, and dead letters by kind of reason."""
        per_topic: Tally[str] = Tally()
        reasons: Tally[str] = Tally()
        for topic, _key, value in messages:
            per_topic[topic] += 1
            if topic == dead_letter_topic:  # rare: decoding each one costs nothing overall
                try:
                    reasons[reason_kind(str(orjson.loads(value).get("reason", "")))] += 1
                except (orjson.JSONDecodeError, AttributeError):
                    reasons["other"] += 1
        for topic, n in per_topic.items():
            self.events_out.labels(topic).inc(n)
        for reason, n in reasons.items():
            self.dead_letters.labels(reason).inc(n)


class PipelineCollector(Collector):
    """The pipeline's own counters, read at scrape time (nothing added to the hot path).

    ``get_stats`` returns the pipeline's ``PipelineStats``, or None before the
    pipeline is built (then nothing is reported).
    """

    def __init__(self, get_stats: Callable[[], Any | None]) -> None:
        self.get_stats = get_stats

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on the stats; describing none keeps registration lazy

    def collect(self) -> Iterator[Metric]:
        stats = self.get_stats()
        if stats is None:
            return
        yield _family(
            "rtic_pipeline_events_received",
            "Events received by the pipeline, per event kind.",
            "kind",
            stats.received,
        )
        yield _family(
            "rtic_pipeline_dead_letters",
            "Dead letters made by the pipeline, per source topic.",
            "source_topic",
            stats.dead_letters,
        )
        yield _family(
            "rtic_rule_evaluations",
            "Events (or deadlines) each rule looked at.",
            "rule",
            stats.rules.evaluated,
        )
        yield _family("rtic_rule_alerts", "Alerts raised per rule.", "rule", stats.rules.fired)
        yield _family(
            "rtic_rule_errors", "Times a rule raised (isolated).", "rule", stats.rules.errors
        )
        yield _family(
            "rtic_rule_alerts_snoozed",
            "Alerts dropped by a snooze, per rule.",
            "rule",
            stats.suppressed,
        )
        alerts = CounterMetricFamily("rtic_pipeline_alerts", "Alerts sent by the pipeline.")
        alerts.add_metric([], stats.alerts)
        yield alerts
        partial = CounterMetricFamily(
            "rtic_pipeline_partial_batches", "Batches enriched only partly (Redis did not answer)."
        )
        partial.add_metric([], stats.partial_batches)
        yield partial


def _family(name: str, documentation: str, label: str, counts: Any) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, n in sorted(counts.items()):
        family.add_metric([str(value)], n)
    return family


def count_redis_round_trips(client: Any, counter: Counter) -> None:
    """Count every request written to Redis by ``client`` (a ``redis.asyncio.Redis``).

    The client's pool makes its connections from a subclass of its own connection
    class whose ``send_packed_command`` (one call per command, or per pipelined
    batch) increments ``counter``. Connections already open are not counted.
    """
    pool = client.connection_pool
    base = pool.connection_class

    async def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
        counter.inc()
        await base.send_packed_command(self, command, check_health)

    pool.connection_class = type(
        f"Counted{base.__name__}", (base,), {"send_packed_command": send_packed_command}
    )
