"""The websocket limits' pure parts: a connection's message rate, and the per-address cap."""

from __future__ import annotations

from push.wslimits import AddressSlots, MessageRate, WsLimits
from rtic.settings import Settings


def test_a_burst_then_the_rate_then_refused() -> None:
    rate = MessageRate(WsLimits(per_second=10, burst=5, flood_limit=100), at=0.0)
    assert [rate.take(0.0) for _ in range(5)] == ["ok"] * 5
    assert rate.take(0.0) == "refuse"
    assert 0.09 < rate.retry_after() <= 0.1
    assert rate.take(0.1) == "ok"  # one token back after 1/10 s
    assert rate.take(0.1) == "refuse"


def test_a_client_that_keeps_to_the_rate_is_never_refused() -> None:
    rate = MessageRate(WsLimits(per_second=10, burst=5, flood_limit=3), at=0.0)
    assert all(rate.take(i * 0.1) == "ok" for i in range(1000))


def test_flooding_closes_after_the_flood_limit_of_refusals() -> None:
    rate = MessageRate(WsLimits(per_second=1, burst=2, flood_limit=4), at=0.0)
    verdicts = [rate.take(0.0) for _ in range(7)]
    assert verdicts == ["ok", "ok", "refuse", "refuse", "refuse", "close", "close"]


def test_strikes_are_forgiven_at_the_allowed_rate() -> None:
    rate = MessageRate(WsLimits(per_second=1, burst=1, flood_limit=3), at=0.0)
    assert [rate.take(0.0) for _ in range(3)] == ["ok", "refuse", "refuse"]  # two strikes
    # Slowed down: a message a second is taken and the strikes drain, never a close.
    assert [rate.take(t) for t in (2.0, 3.0, 4.0)] == ["ok", "ok", "ok"]
    assert rate.strikes == 0.0
    assert [rate.take(4.0) for _ in range(3)] == ["refuse", "refuse", "close"]


def test_a_clock_going_back_gives_nothing_back() -> None:
    rate = MessageRate(WsLimits(per_second=1, burst=1, flood_limit=10), at=5.0)
    assert rate.take(5.0) == "ok"
    assert rate.take(1.0) == "refuse"


def test_address_slots_cap_and_release() -> None:
    slots = AddressSlots(2)
    assert slots.claim("10.0.0.1") and slots.claim("10.0.0.1")
    assert not slots.claim("10.0.0.1")
    assert slots.claim("10.0.0.2")  # another address has its own
    slots.release("10.0.0.1")
    assert slots.claim("10.0.0.1")
    for _ in range(2):
        slots.release("10.0.0.1")
    slots.release("10.0.0.2")
    assert not slots.open  # nothing kept for an address with none open


def test_no_cap_when_zero() -> None:
    slots = AddressSlots(0)
    assert all(slots.claim("127.0.0.1") for _ in range(10_000))


def test_limits_from_settings() -> None:
    settings = Settings(
        ws_max_message_bytes=2048,
        ws_messages_per_second=3,
        ws_message_burst=4,
        ws_flood_limit=5,
        ws_max_connections_per_address=6,
    )
    assert WsLimits.from_settings(settings) == WsLimits(2048, 3, 4, 5, 6)
    assert WsLimits.from_settings(Settings()) == WsLimits()  # the defaults agree
