"""Limits of one websocket and of one client address: size, rate, connections.

The web edge (``push/web.py``) applies them; they are pure (a clock is passed in)
and tested without sockets.

- **Size**: a message (its fragments counted together) over ``max_message_bytes``
  closes the socket with **1009** (message too big) and the reason
  ``frame with N bytes exceeds limit of M bytes``. The websockets protocol under
  uvicorn (``ws_max_size``) does this while parsing, before the message is whole
  in memory.
- **Rate**: a token bucket per connection (``burst`` at once, then
  ``per_second``). A message that finds the bucket empty is not handled: the
  client gets an ``error`` frame ``rate_limited``. Each refused message is a
  strike; strikes are forgiven at the allowed rate, so a client that slows down
  is never closed, and one that goes on flooding reaches ``flood_limit`` and is
  closed with **1008** (policy violation) ``message rate limit exceeded``.
- **Connections per address**: at most ``max_per_address`` sockets open at once
  from one client address; the next is refused with HTTP **429** before the
  upgrade (no socket is opened, so nothing else is spent on it). 0: no cap.
  The address is the connection's (behind a proxy, see ``push/ratelimit.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rtic.settings import Settings

CLOSE_MESSAGE_TOO_BIG = 1009  # the protocol's own close (uvicorn/websockets), named here
CLOSE_FLOODING = (1008, "message rate limit exceeded")


@dataclass(frozen=True)
class WsLimits:
    """The limits of every socket of one gateway (``Settings.ws_*``)."""

    max_message_bytes: int = 64 * 1024
    per_second: float = 20.0
    burst: int = 60
    flood_limit: int = 50
    max_per_address: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> WsLimits:
        return cls(
            max_message_bytes=settings.ws_max_message_bytes,
            per_second=settings.ws_messages_per_second,
            burst=settings.ws_message_burst,
            flood_limit=settings.ws_flood_limit,
            max_per_address=settings.ws_max_connections_per_address,
        )


@dataclass
class MessageRate:
    """One connection's bucket and strikes: ``take(now)`` says what to do with a message."""

    limits: WsLimits
    at: float
    tokens: float = field(init=False)
    strikes: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = float(self.limits.burst)

    def take(self, now: float) -> str:
        """``"ok"`` (handle it), ``"refuse"`` (error frame, not handled) or ``"close"``
        (flooding: close with ``CLOSE_FLOODING``)."""
        elapsed = max(0.0, now - self.at)
        self.at = max(self.at, now)
        refill = elapsed * self.limits.per_second
        self.tokens = min(float(self.limits.burst), self.tokens + refill)
        self.strikes = max(0.0, self.strikes - refill)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return "ok"
        self.strikes += 1.0
        return "close" if self.strikes >= self.limits.flood_limit else "refuse"

    def retry_after(self) -> float:
        """Seconds until the next message would be taken."""
        return max(0.0, (1.0 - self.tokens) / self.limits.per_second)


@dataclass
class AddressSlots:
    """Sockets open per client address, at most ``limit`` each (0: no cap)."""

    limit: int
    open: Counter[str] = field(default_factory=Counter)

    def claim(self, address: str) -> bool:
        """Take a slot for ``address``: False (and nothing taken) if it has none left."""
        if self.limit and self.open[address] >= self.limit:
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]
