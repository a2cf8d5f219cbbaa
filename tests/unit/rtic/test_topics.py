"""Topic names: the contract's, versioned, with the deployment's prefix."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtic.kafka import bootstrap_servers
from rtic.topics import Topics


def test_contract_names_and_prefix() -> None:
    plain = Topics.with_prefix()
    assert plain.calls == "rtic.calls.v1" and plain.dead_letter == "rtic.dead-letter.v1"
    assert (
        plain.officer_locations == "rtic.officer-locations.v1"
        and plain.alert_acks == "rtic.alert-acks.v1"
    )
    assert all(t.startswith("test.") for t in Topics.with_prefix("test.").all())
    assert len(set(plain.all())) == 15 and len(plain.inputs()) == 5


def test_bootstrap_servers_from_faust_urls() -> None:
    assert bootstrap_servers("kafka://a:1;b:2") == "a:1,b:2"
    assert bootstrap_servers("kafka://127.0.0.1:9092") == "127.0.0.1:9092"


CONTRACT_NAMES = [
    "rtic.calls.v1",
    "rtic.incidents.v1",
    "rtic.anpr.v1",
    "rtic.officer-locations.v1",
    "rtic.reference.v1",
    "rtic.enriched.v1",
    "rtic.alerts.v1",
    "rtic.alert-acks.v1",
    "rtic.dead-letter.v1",
    "rtic.cases.v1",
    "rtic.evidence.v1",
    "rtic.audit.v1",
    "rtic.statements.v1",
    "rtic.verifications.v1",
    "rtic.priorities.v1",
]


def test_every_contract_topic_and_nothing_else_every_name_versioned() -> None:
    plain = Topics.with_prefix()
    assert plain.all() == CONTRACT_NAMES
    assert plain.inputs() == CONTRACT_NAMES[:5]
    assert all(name.endswith(".v1") for name in plain.all())


def test_topics_cannot_be_changed_after_creation() -> None:
    plain = Topics.with_prefix()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.calls = "other"  # type: ignore[misc]


@given(st.text(max_size=20))
def test_a_prefix_is_added_to_every_name_and_only_that(prefix: str) -> None:
    prefixed = Topics.with_prefix(prefix)
    assert prefixed.all() == [prefix + name for name in CONTRACT_NAMES]
    assert set(prefixed.inputs()) <= set(prefixed.all())


def test_one_map_from_event_kind_to_input_topic() -> None:
    from rtic.schemas import EventKind

    topics = Topics.with_prefix("p.")
    assert {topics.for_kind(k) for k in EventKind} == set(topics.inputs())
    assert topics.for_kind(EventKind.CALL) == "p.rtic.calls.v1"
    assert topics.for_kind("officer_location") == "p.rtic.officer-locations.v1"
    for kind in EventKind:
        assert topics.kind_of(topics.for_kind(kind)) == kind
    assert topics.kind_of(topics.alerts) is None and topics.kind_of("rtic.calls.v1") is None
    with pytest.raises(KeyError):
        topics.for_kind("alert")
