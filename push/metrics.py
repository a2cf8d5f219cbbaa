"""The gateway's metrics, scraped at ``/metrics`` (Prometheus text format).

Each gateway has its own ``CollectorRegistry``, so several can run in one process
(tests) without their counts mixing. Label values are always the gateway's own
words (roles, frame kinds, error codes, topic names), never what a client sent,
so the number of series stays bounded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rtic.schemas import Role

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]


class GatewayMetrics:
    """Counters and gauges of one gateway, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.clients = Gauge(
            "rtic_gateway_clients", "Connected websocket clients.", ["role"], registry=r
        )
        for role in Role:
            self.clients.labels(role.value)  # every role shows, at 0 until one connects
        self.connections = Counter(
            "rtic_gateway_connections", "Websocket clients accepted.", ["role"], registry=r
        )
        self.frames_sent = Counter(
            "rtic_gateway_frames_sent", "Frames written to client sockets.", registry=r
        )
        self.events_dropped = Counter(
            "rtic_gateway_events_dropped",
            "Live map events not queued for a client whose queue was half full.",
            registry=r,
        )
        self.overflow_closes = Counter(
            "rtic_gateway_overflow_closes",
            "Clients closed (1013) because an alert found their queue full.",
            registry=r,
        )
        self.consumed = Counter(
            "rtic_gateway_consumed", "Kafka messages consumed.", ["topic"], registry=r
        )
        self.published = Counter(
            "rtic_gateway_published",
            "Messages fanned out: new alert versions, live events, acks.",
            ["kind"],
            registry=r,
        )
        self.client_messages = Counter(
            "rtic_gateway_client_messages",
            "Messages from clients, by type and result (ok or the error code).",
            ["type", "result"],
            registry=r,
        )
        self.produced = Counter(
            "rtic_gateway_produced",
            "Changes written to Kafka for clients (acks, snoozes, audit records), by result.",
            ["kind", "result"],
            registry=r,
        )
        self.audit_buffered = Gauge(
            "rtic_gateway_audit_buffered",
            "Audit entries waiting to be written to rtic.audit.v1.",
            registry=r,
        )
        self.audit_dropped = Counter(
            "rtic_gateway_audit_dropped",
            "Audit records dropped because the audit buffer was full, by action.",
            ["action"],
            registry=r,
        )
        self.revocation_refreshes = Counter(
            "rtic_gateway_revocation_refreshes",
            "Reads of the token revocation list from the database, by result.",
            ["result"],
            registry=r,
        )
        self.revoked_closes = Counter(
            "rtic_gateway_revoked_closes",
            "Websocket clients closed because their token was revoked.",
            registry=r,
        )
        self.ws_limited = Counter(
            "rtic_gateway_ws_limited",
            "Websocket limits applied: messages refused over the rate, sockets closed for "
            "flooding, connections refused past the per-address cap (push/wslimits.py).",
            ["limit"],
            registry=r,
        )
        self.case_updates = Counter(
            "rtic_gateway_case_updates",
            "Case updates read, and case_update frames queued for clients.",
            ["kind"],
            registry=r,
        )

    def value(self, name: str, **labels: str) -> float:
        """The current value of one sample (0 if it has none yet)."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)
