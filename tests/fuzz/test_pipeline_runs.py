"""Hostile batches through the whole stream pipeline in process
(``streams.pipeline.Pipeline.process`` on the memory stores, the default rules, the
real reference data): it never raises, every record comes out once (enriched or a dead
letter), every alert is a valid ``AlertV1``, and memory stays bounded over a long run."""

from __future__ import annotations

import gc

import orjson
import psutil
from hypothesis import given
from hypothesis import strategies as st

from enrichers.stores import Stores
from rtic.schemas import AlertV1, DeadLetterV1
from rules.catalogue import default_rules
from streams.pipeline import Pipeline, RawRecord
from tests.conftest import NOW
from tests.fuzz import seeds
from tests.fuzz.hostile import MEASURES, MEDIUM, ODD_TIMES, budget, count, hostile_wire
from tests.fuzz.test_topic_decoders import PIPELINE_KINDS, TOPICS, deadline_decode, topic

# Memory growth allowed over the long run below (the stores keep every event's history,
# so some growth is the engine working; a leak per message would pass this many times).
MAX_GROWTH_MB = 60


async def fresh_pipeline() -> Pipeline:
    """A pipeline on fresh memory stores, fed first the reference data the simulator and
    the factories send (hotlists, markers, geofences, places, snoozes): reads can hit."""
    pipe = Pipeline(TOPICS, seeds.geo(), Stores.memory(), default_rules(), clock=lambda: NOW)
    changes = [orjson.dumps(change) for change in seeds.by_topic()["reference"]]
    refs = [RawRecord(TOPICS.reference, 0, i, b"r", v) for i, v in enumerate(changes)]
    await pipe.process(refs)
    return pipe


@st.composite
def hostile_batch(draw: st.DrawFn) -> tuple[str, list[tuple[str, bytes]]]:
    """A topic, and one to six hostile messages for it."""
    short = draw(st.sampled_from(list(PIPELINE_KINDS)))
    batch = draw(st.lists(hostile_wire(seeds.by_topic()[short]), min_size=1, max_size=6))
    return short, batch


async def run_batch(pipe: Pipeline, short: str, values: list[bytes], first: int = 0) -> str:
    """One batch through ``process``; its outcome for the tally (checked on the way)."""
    records = [RawRecord(topic(short), 1, first + i, b"k", v) for i, v in enumerate(values)]
    out = await pipe.process(records)
    # A rule that raises is isolated (rules.base.evaluate), but on hostile input it is
    # still a finding: none may.
    assert not pipe.stats.rules.errors, dict(pipe.stats.rules.errors)
    letters = [orjson.loads(v) for t, _, v in out.messages if t == TOPICS.dead_letter]
    enriched = [orjson.loads(v) for t, _, v in out.messages if t == TOPICS.enriched]
    for letter in letters:
        DeadLetterV1.model_validate(letter)
    for _, _, value in (m for m in out.messages if m[0] == TOPICS.alerts):
        AlertV1.model_validate(orjson.loads(value))
    if short == "reference":
        assert enriched == [] and len(letters) <= len(records)
    elif short == "anpr":  # a camera batch with some bad reads is enriched and dead-lettered
        assert len(enriched) <= len(records) and len(letters) <= len(records)
        assert len(enriched) + len(letters) >= len(records)
    else:
        assert len(enriched) + len(letters) == len(records)
    return "alerts" if out.alerts else ("dead_letters" if letters else "clean")


@budget(MEDIUM)
@given(hostile_batch())
async def test_hostile_batches_through_the_pipeline_never_raise(
    batch: tuple[str, list[tuple[str, bytes]]],
) -> None:
    short, examples = batch
    pipe = await fresh_pipeline()
    count("pipeline:process", await run_batch(pipe, short, [raw for _, raw in examples]))
    for family, _ in examples:
        count("families", family)


def rss_mb() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


async def test_memory_stays_bounded_over_a_long_hostile_run() -> None:
    """Thousands of hostile messages through one pipeline: RSS after a warm-up run and
    after a run five times as long differ by less than ``MAX_GROWTH_MB``."""
    pipe = await fresh_pipeline()
    examples: list[tuple[str, bytes]] = []

    @budget(200)
    @given(hostile_batch())
    def collect(batch: tuple[str, list[tuple[str, bytes]]]) -> None:
        short, items = batch
        examples.extend((short, raw) for _, raw in items)

    collect()
    by_topic: dict[str, list[bytes]] = {}
    for short, raw in examples:
        by_topic.setdefault(short, []).append(raw)

    async def one_pass(offset: int) -> int:
        sent = 0
        for short, values in by_topic.items():
            for i in range(0, len(values), 50):
                await run_batch(pipe, short, values[i : i + 50], offset + i)
                sent += len(values[i : i + 50])
        return sent

    await one_pass(0)  # warm-up: caches, the geo index's lookups, the stores' first keys
    before = rss_mb()
    sent = 0
    for n in range(5):
        sent += await one_pass(100_000 * (n + 1))
    after = rss_mb()
    MEASURES["pipeline_memory"] = {
        "messages": sent,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "limit_mb": MAX_GROWTH_MB,
    }
    assert after - before < MAX_GROWTH_MB, (before, after, sent)


TIME_FIELDS = {"calls": "received_at", "incidents": "at", "anpr": "read_at"}


async def test_odd_times_are_dead_letters_or_ordinary_events() -> None:
    """Every odd timestamp on every event time, through the pipeline and the deadline
    book: a dead letter, or an event no rule fails on (year 1 and 9999 once made the
    response-promise rule raise on every timer tick)."""
    for short, name in TIME_FIELDS.items():
        for at in ODD_TIMES:
            message = {**seeds.by_topic()[short][0], name: at}
            pipe = await fresh_pipeline()
            count("odd_times:pipeline", await run_batch(pipe, short, [orjson.dumps(message)]))
            if short == "incidents":
                count("odd_times:deadlines", deadline_decode(short, orjson.dumps(message)))
