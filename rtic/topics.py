"""Topic names of the wire contract, with the deployment's prefix."""

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
        )

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]

    def inputs(self) -> list[str]:
        return [self.calls, self.incidents, self.anpr, self.officer_locations, self.reference]
