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
    assert len(set(plain.all())) == 9 and len(plain.inputs()) == 5


def test_bootstrap_servers_from_faust_urls() -> None:
    assert bootstrap_servers("kafka://a:1;b:2") == "a:1,b:2"
    assert bootstrap_servers("kafka://127.0.0.1:9092") == "127.0.0.1:9092"
