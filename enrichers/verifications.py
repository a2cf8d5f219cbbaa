"""Plate checks decided: the first decision per alert version, and counts per camera.

A "check the plate" alert (``anpr_hotlist_hit``) is answered by a person, ``verified``
or ``not_a_match`` (``rtic.verifications.v1``). Two people may answer at once, and a
worker may see a message again: the first decision for an alert version wins, kept in
Redis (``Keys.verification``: SET NX, 30 days), and in the same script the decision is
counted against its camera (``Keys.anpr_checks``), so a redelivered or losing decision
is never counted twice. ``decide`` answers the winning verification's id: the caller
acts (raises the verified alert) only when it is its own.

``MemoryVerifications`` is the same for unit tests.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple, Protocol

from enrichers.keys import Keys
from enrichers.redis_io import call_script, connect
from rtic.errors import ServiceError

DECISION_TTL_S = 30 * 86_400
OUTCOMES = ("verified", "not_a_match")

# KEYS: the decision, the counts. ARGV: verification id, ttl, outcome, camera ('' none).
DECIDE = """
local won = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[2]))
if won then
  if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[3] .. ':' .. ARGV[4], 1) end
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
"""


class Decision(NamedTuple):
    """The winning decision on an alert version: its verification id, and whether the
    decision asked about is it."""

    verification_id: str
    first: bool


class VerificationStore(Protocol):
    """Where decisions and camera counts are kept."""

    async def decide(
        self, alert_id: str, version: int, verification_id: str, outcome: str, camera_id: str
    ) -> Decision:
        """Record a decision unless one is kept for this alert version; the winner."""
        ...

    async def camera_counts(self) -> dict[str, dict[str, int]]:
        """Per camera id: ``{"verified": n, "not_a_match": m}``."""
        ...


def parse_counts(raw: dict[Any, Any]) -> dict[str, dict[str, int]]:
    """The counts hash (``outcome:camera`` -> n) per camera; unknown fields are skipped."""
    out: dict[str, dict[str, int]] = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        outcome, _, camera = name.partition(":")
        if outcome not in OUTCOMES or not camera:
            continue
        try:
            n = int(value)
        except (TypeError, ValueError):
            continue
        counts = out.setdefault(camera, dict.fromkeys(OUTCOMES, 0))
        counts[outcome] = n
    return out


class RedisVerifications:
    """Decisions and counts in Redis."""

    def __init__(self, client: Any, keys: Keys, *, timeout: float = 1.0) -> None:
        self.redis = client
        self.keys = keys
        self.timeout = timeout
        self._decide = client.register_script(DECIDE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "", timeout: float = 1.0) -> RedisVerifications:
        return cls(connect(url, timeout), Keys(prefix), timeout=timeout)

    async def decide(
        self, alert_id: str, version: int, verification_id: str, outcome: str, camera_id: str
    ) -> Decision:
        winner = await call_script(
            self._decide,
            (self.keys.verification(alert_id, version), self.keys.anpr_checks),
            (verification_id, DECISION_TTL_S, outcome, camera_id),
            self.timeout,
        )
        won = winner.decode() if isinstance(winner, bytes) else str(winner)
        return Decision(won, won == verification_id)

    async def camera_counts(self) -> dict[str, dict[str, int]]:
        try:
            raw = await self.redis.hgetall(self.keys.anpr_checks)
        except Exception as exc:
            raise ServiceError(f"redis: {type(exc).__name__}: {exc}") from exc
        return parse_counts(raw)

    async def close(self) -> None:
        await self.redis.aclose()


class MemoryVerifications:
    """The same in memory (unit tests)."""

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, int], str] = {}
        self.counts: Counter[str] = Counter()

    async def decide(
        self, alert_id: str, version: int, verification_id: str, outcome: str, camera_id: str
    ) -> Decision:
        key = (alert_id, version)
        if key in self.decisions:
            won = self.decisions[key]
            return Decision(won, won == verification_id)
        self.decisions[key] = verification_id
        if camera_id:
            self.counts[f"{outcome}:{camera_id}"] += 1
        return Decision(verification_id, True)

    async def camera_counts(self) -> dict[str, dict[str, int]]:
        return parse_counts(dict(self.counts))
