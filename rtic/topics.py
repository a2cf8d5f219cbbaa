"""Topic names of the wire contract, with the deployment's prefix.

The one map from an input event's kind (``rtic.schemas.EventKind``: its
string values, so this module needs nothing else) to the topic that carries
it is ``Topics.by_kind``; the simulators, replay, the command line and the
pipeline all use it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Topics:
    """Every topic the engine reads or writes (contract names, prefixed)."""

    calls: str
    incidents: str
    anpr: str
    officer_locations: str
    reference: str
    enriched: str
    alerts: str
    alert_acks: str
    dead_letter: str
    cases: str
    evidence: str
    audit: str
    statements: str
    verifications: str
    priorities: str

    @classmethod
    def with_prefix(cls, prefix: str = "") -> Topics:
        return cls(
            calls=f"{prefix}rtic.calls.v1",
            incidents=f"{prefix}rtic.incidents.v1",
            anpr=f"{prefix}rtic.anpr.v1",
            officer_locations=f"{prefix}rtic.officer-locations.v1",
            reference=f"{prefix}rtic.reference.v1",
            enriched=f"{prefix}rtic.enriched.v1",
            alerts=f"{prefix}rtic.alerts.v1",
            alert_acks=f"{prefix}rtic.alert-acks.v1",
            dead_letter=f"{prefix}rtic.dead-letter.v1",
            cases=f"{prefix}rtic.cases.v1",
            evidence=f"{prefix}rtic.evidence.v1",
            audit=f"{prefix}rtic.audit.v1",
            statements=f"{prefix}rtic.statements.v1",
            verifications=f"{prefix}rtic.verifications.v1",
            priorities=f"{prefix}rtic.priorities.v1",
        )

    def by_kind(self) -> dict[str, str]:
        """Input topic by event kind (``"call"``, ``"incident"``, ``"anpr"``,
        ``"officer_location"``, ``"reference"``)."""
        return {
            "call": self.calls,
            "incident": self.incidents,
            "anpr": self.anpr,
            "officer_location": self.officer_locations,
            "reference": self.reference,
        }

    def for_kind(self, kind: str) -> str:
        """The input topic of an event kind (``KeyError`` for anything else)."""
        return self.by_kind()[kind]

    def kind_of(self, topic: str) -> str | None:
        """The event kind an input topic carries, or None for any other topic."""
        return next((k for k, t in self.by_kind().items() if t == topic), None)

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]

    def inputs(self) -> list[str]:
        return list(self.by_kind().values())
