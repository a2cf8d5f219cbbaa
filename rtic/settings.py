"""The one settings object. Nothing else in the engine reads the environment.

Every field can be set with an environment variable ``RTIC_<FIELD>`` (for
example ``RTIC_KAFKA_URL``) or in a ``.env`` file in the working directory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_TOKEN_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    """Typed settings for every part of the engine (env prefix ``RTIC_``)."""

    model_config = SettingsConfigDict(env_prefix="RTIC_", env_file=".env", extra="ignore")

    kafka_url: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap server(s), 'kafka://host:port[;host:port]'.",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis for history, hotlists and markers.",
    )
    database_url: str = Field(
        "sqlite:///rtic.sqlite3",
        description="Durable store for cases, timelines and audit (PostgreSQL in production).",
    )
    topic_prefix: str = Field("", description="Prefix added to every topic name.")
    topic_partitions: int = Field(1, ge=1, description="Partitions for topics the engine creates.")
    app_id: str = Field("rtic-engine", description="Faust app id (the consumer group).")
    token_secret: SecretStr = Field(
        SecretStr(DEV_TOKEN_SECRET),
        description="HMAC secret that signs bearer tokens. Change it outside development.",
    )
    token_ttl_seconds: int = Field(12 * 3600, ge=60, description="Lifetime of a new token.")
    gateway_host: str = Field("127.0.0.1", description="Address the push gateway listens on.")
    gateway_port: int = Field(8765, description="Port of the push gateway and dashboards.")
    gateway_client_queue: int = Field(
        2000, ge=10, description="Messages queued per websocket client before it is dropped."
    )
    gateway_resume_buffer: int = Field(
        5000, ge=0, description="Recent alerts kept for clients that reconnect and resume."
    )
    data_dir: Path = Field(
        PROJECT_ROOT / "data", description="Reference data (boundaries, places)."
    )
    batch_max: int = Field(500, ge=1, description="Events an agent takes at most per batch.")
    batch_within: float = Field(0.01, gt=0, description="Seconds an agent waits to fill a batch.")
    broker_rebalance_timeout: float = Field(
        3.0, gt=0, description="Consumer-group rebalance timeout (s); short joins on Tansu."
    )
    broker_session_timeout: float = Field(3.0, gt=0, description="Consumer session timeout (s).")
    broker_heartbeat_interval: float = Field(0.5, gt=0, description="Heartbeat interval (s).")
    history_days: int = Field(28, ge=1, description="Days of call history kept per address/person.")
    repeat_call_threshold: int = Field(
        3, ge=2, description="Calls from one address or person in the window that raise an alert."
    )
    redis_timeout: float = Field(1.0, gt=0, description="Seconds before a Redis call is given up.")
    rule_clock: Literal["wall", "event"] = Field(
        "wall",
        description="Clock of time-based rules: 'wall' live, 'event' for replays of recorded "
        "data (now is the latest event time seen).",
    )
    timer_interval: float = Field(
        1.0, gt=0, description="Seconds between checks of time-based rules' deadlines."
    )
    rules_file: Path | None = Field(
        None,
        description="YAML rule file (rules/README.md); reloaded when it changes. None: the defaults.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
