"""The one settings object. Nothing else in the engine reads the environment.

Every field can be set with an environment variable ``RTIC_<FIELD>`` (for
example ``RTIC_KAFKA_URL``) or in a ``.env`` file in the working directory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_TOKEN_SECRET = "dev-only-secret-change-me-outside-development"


class RateLimit(BaseModel):
    """A token bucket's size and refill: ``burst`` requests at once, then ``per_minute``."""

    burst: int = Field(ge=1, description="Requests allowed at once (the bucket's size).")
    per_minute: float = Field(gt=0, description="Requests allowed per minute after a burst.")


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
    topic_prefix: str = Field("", description="Prefix added to every topic name.")
    topic_partitions: int = Field(1, ge=1, description="Partitions for topics the engine creates.")
    app_id: str = Field("rtic-engine", description="Faust app id (the consumer group).")
    environment: Literal["development", "production"] = Field(
        "development",
        description="'development' (the default: 'rtic up', tests) or 'production'. Outside "
        "development everything that signs or checks tokens (the gateway, 'rtic up', 'rtic "
        "token') refuses to start with the development secret or one under 32 bytes.",
    )
    token_secret: SecretStr = Field(
        SecretStr(DEV_TOKEN_SECRET),
        description="HMAC secret that signs new bearer tokens (HS256; at least 32 bytes). "
        "Change it outside development.",
    )
    token_key_id: str = Field(
        "k1",
        min_length=1,
        description="Key id (the JWT 'kid' header) of token_secret. To rotate: move the "
        "old secret into token_previous_secrets under its id, set a new secret and id.",
    )
    token_previous_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Earlier token secrets by key id, still accepted for verification so "
        'tokens signed with them work until they expire (JSON: {"k0": "old secret"}).',
    )
    token_issuer: str = Field("rtic-engine", description="The 'iss' claim of tokens.")
    token_audience: str = Field("rtic", description="The 'aud' claim tokens must carry.")
    token_ttl_seconds: int = Field(12 * 3600, ge=60, description="Lifetime of a new token.")
    login_ticket_ttl_seconds: int = Field(
        300,
        ge=10,
        le=3600,
        description="Lifetime of a login ticket (a link's '?ticket=', one use, kept in Redis): "
        "the page exchanges it for a bearer token at POST /api/session/ticket.",
    )
    gateway_host: str = Field("127.0.0.1", description="Address the push gateway listens on.")
    gateway_port: int = Field(8765, description="Port of the push gateway and dashboards.")
    gateway_client_queue: int = Field(
        2000, ge=10, description="Messages queued per websocket client before it is dropped."
    )
    officer_max_radius_km: float = Field(
        5.0,
        gt=0,
        le=50,
        description="The largest radius an officer may subscribe to alerts with (a larger "
        "one is capped; the subscribed reply shows the radius in force).",
    )
    ws_max_message_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest websocket message a client may send (fragments counted "
        "together); a larger one closes the socket with 1009.",
    )
    ws_messages_per_second: float = Field(
        20.0,
        gt=0,
        description="Messages a websocket client may send per second after a burst; one "
        "over the rate is refused with an error frame 'rate_limited'.",
    )
    ws_message_burst: int = Field(
        60, ge=1, description="Messages a websocket client may send at once (the bucket's size)."
    )
    ws_flood_limit: int = Field(
        50,
        ge=1,
        description="Refused messages (over the rate, forgiven at the allowed rate) before "
        "the socket is closed with 1008: a client that goes on flooding.",
    )
    ws_max_connections_per_address: int = Field(
        1000,
        ge=0,
        description="Websockets open at once from one client address; one more is refused "
        "with HTTP 429 before the upgrade (0: no cap).",
    )
    gateway_resume_buffer: int = Field(
        5000, ge=0, description="Recent alerts kept for clients that reconnect and resume."
    )
    gateway_jobs_replay: int = Field(
        100_000,
        ge=0,
        description="Messages per partition of rtic.incidents.v1 and rtic.officer-locations.v1 "
        "the gateway reads again at start to rebuild its incident and officer boards.",
    )
    job_update_ttl_days: int = Field(
        7,
        ge=1,
        description="Days the gateway remembers a job update's or an assignment's id (in "
        "Redis), so a device sending it again is answered 'duplicate' and nothing is written.",
    )
    data_dir: Path = Field(
        PROJECT_ROOT / "data", description="Reference data (boundaries, places)."
    )
    batch_max: int = Field(500, ge=1, description="Events an agent takes at most per batch.")
    batch_within: float = Field(0.01, gt=0, description="Seconds an agent waits to fill a batch.")
    worker_drain_s: float = Field(
        10.0,
        ge=0,
        description="Seconds a stopping worker (or one giving up partitions) waits for the "
        "batches in flight to deliver their output; what is not done by then is not "
        "committed and is read again by the next worker.",
    )
    broker_rebalance_timeout: float = Field(
        3.0, gt=0, description="Consumer-group rebalance timeout (s); short joins on Tansu."
    )
    broker_session_timeout: float = Field(3.0, gt=0, description="Consumer session timeout (s).")
    broker_heartbeat_interval: float = Field(0.5, gt=0, description="Heartbeat interval (s).")
    history_days: int = Field(28, ge=1, description="Days of call history kept per address/person.")
    repeat_call_threshold: int = Field(
        3, ge=2, description="Calls from one address or person in the window that raise an alert."
    )
    anpr_verify_min_confidence: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="A plate read below this ANPR confidence (or one that gives none) never "
        "raises a critical alert before a person verifies it: its 'check the plate' alert "
        "is at most high.",
    )
    anpr_verified_radius_m: float = Field(
        3000.0,
        gt=0,
        le=50_000,
        description="A verified hotlist hit goes to the officers (on duty, with a fix in "
        "the last 30 minutes) within this many metres of the read, and to analysts and "
        "supervisors.",
    )
    redis_timeout: float = Field(1.0, gt=0, description="Seconds before a Redis call is given up.")
    reference_copy_max: int = Field(
        200_000,
        ge=0,
        description="Hotlist entries and warning markers a worker keeps in memory (read from "
        "the reference topic) to enrich with when Redis is unreachable; past it new entries "
        "are left out of the copy and the partial reason says so.",
    )
    rule_clock: Literal["wall", "event"] = Field(
        "wall",
        description="Clock of time-based rules: 'wall' live, 'event' for replays of recorded "
        "data (now is the latest event time seen).",
    )
    timer_interval: float = Field(
        1.0, gt=0, description="Seconds between checks of time-based rules' deadlines."
    )
    trends_publish_s: float = Field(
        5.0,
        gt=0,
        description="Seconds between the worker's writes of changed hourly trend counts "
        "(what the desk's trends panel and the anomaly check read).",
    )
    anomaly_check_s: float = Field(
        30.0, gt=0, description="Seconds between checks for unusual demand (the leader worker)."
    )
    anomaly_alpha: float = Field(
        1e-4,
        gt=0,
        lt=0.5,
        description="Unusual demand: an area's calls in an hour whose probability under its "
        "usual pattern (tail p-value) is at most this raise an analyst alert.",
    )
    anomaly_min_count: int = Field(
        3, ge=1, description="Unusual demand: fewer calls than this in an hour never alert."
    )
    anomaly_min_history_hours: int = Field(
        168,
        ge=1,
        description="Unusual demand: hours of counted history needed before any alert (a week "
        "gives the weekly pattern).",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as readable text, or 'json': one JSON object a line (time in "
        "UTC, level, logger, message, exc) for a log shipper.",
    )
    worker_web_host: str = Field(
        "127.0.0.1", description="Address of the worker's /metrics and /healthz endpoint."
    )
    worker_web_port: int = Field(
        6066,
        ge=0,
        le=65535,
        description="Port of the worker's /metrics and /healthz endpoint (0: any free port).",
    )
    database_url: str = Field(
        f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'rtic.sqlite3'}",
        description="The records database (cases, audit, evidence metadata, token "
        "revocations; docs/records.md). Default: an embedded SQLite file under var/ (its "
        "folder is created). Production: PostgreSQL, 'postgresql+asyncpg://user:pass@host/db'.",
    )
    retention_case_days: int = Field(
        2192,
        ge=1,
        description="Days a closed case (its timeline, links and evidence metadata) is kept "
        "after closing before 'rtic db purge' deletes it: 6 years, the MoPI review period "
        "for most crime records (docs/records.md).",
    )
    retention_evidence_days: int = Field(
        31,
        ge=1,
        description="Days metadata of evidence linked to no case is kept after capture: "
        "31, as for non-evidential body-worn video (College of Policing guidance).",
    )
    retention_revocation_days: int = Field(
        90,
        ge=1,
        description="Days a token revocation is kept; never less than a token's lifetime "
        "(purge keeps any revocation younger than token_ttl_seconds).",
    )
    retention_audit_days: int = Field(
        2557,
        ge=1,
        description="Days the audit trail is kept before the force archives it (7 years): "
        "the engine never deletes audit records; 'rtic db purge' reports those past this "
        "period (docs/records.md says how to archive them).",
    )
    rules_file: Path | None = Field(
        None,
        description="YAML rule file (README 'Rules'; format in rules/config.py, example "
        "rules/default.yaml); reloaded when it changes. None: the defaults.",
    )
    chat_escalate_after_s: float = Field(
        120.0,
        gt=0,
        description="Seconds a citizen's webchat message may wait for a handler's reply "
        "before the chat is escalated (flagged on the queue, handlers and supervisors told).",
    )
    force_code: str = Field(
        "WM",
        pattern=r"^[A-Z]{2,4}$",
        description="The force's code: the prefix of case references (WM in "
        "WM-2026-0001234), 2 to 4 capital letters.",
    )
    evidence_dir: Path = Field(
        PROJECT_ROOT / "var" / "evidence",
        description="Where uploaded evidence files are kept (outside the database), "
        "content-addressed: <dir>/sha256/<2 hex>/<sha256>; uploads arrive in <dir>/incoming "
        "first. Default: beside the default database, under var/ (created).",
    )
    evidence_max_image_bytes: int = Field(
        30 * 1024 * 1024, ge=1, description="Largest photo upload (JPEG, PNG, GIF, WebP, HEIC)."
    )
    evidence_max_video_bytes: int = Field(
        512 * 1024 * 1024, ge=1, description="Largest video upload (MP4, QuickTime, WebM)."
    )
    evidence_max_audio_bytes: int = Field(
        100 * 1024 * 1024, ge=1, description="Largest audio upload (MP3, WAV, Ogg, M4A)."
    )
    evidence_max_document_bytes: int = Field(
        25 * 1024 * 1024, ge=1, description="Largest document upload (PDF)."
    )
    evidence_max_text_bytes: int = Field(
        1024 * 1024, ge=1, description="Largest plain text upload (UTF-8)."
    )
    online_report_grade: Literal[1, 2, 3, 4] = Field(
        3,
        description="The grade of the incident an online report opens on the desk's queue "
        "(3: a scheduled response) until the desk re-grades it.",
    )
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict,
        description="Rate limits per endpoint name, per client address, over the defaults "
        "in push/ratelimit.py (DEFAULT_RATES: portal_report, portal_session, statement...). "
        'JSON: {"portal_report": {"burst": 5, "per_minute": 0.1}}.',
    )
    map_tile_url: str | None = Field(
        None,
        pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[^\s'\";]*$",
        description="Map tiles drawn under the desk's boundaries: an https URL template "
        "with {z}, {x} and {y} (e.g. https://tiles.example.org/{z}/{x}/{y}.png) from a "
        "tile server the force runs or licenses. The pages' CSP then allows images from "
        "that origin only. None (default): the boundaries map alone, nothing fetched.",
    )

    # Patrol priorities (push/priorities.py, analytics/live.py, docs/analytics.md).
    priorities_interval_s: float = Field(
        60.0,
        gt=0,
        description="How often the gateway refits the patrol priorities (when "
        "calls came in or the period moved on) and writes them to rtic.priorities.v1.",
    )
    priorities_period_hours: float = Field(
        24.0, gt=0, le=24 * 7, description="The period a priority list is for (the next 24 h)."
    )
    priorities_window_days: float = Field(
        28.0, gt=0, le=90, description="The recent calls the priorities are fitted on."
    )
    priorities_top: int = Field(20, ge=1, le=200, description="Priorities listed.")
    priorities_categories: list[str] = Field(
        default_factory=lambda: [
            "burglary",
            "robbery",
            "assault",
            "theft",
            "vehicle_crime",
            "criminal_damage",
        ],
        description="Call categories the priorities model: victim-reported crime a patrol "
        "can prevent (not domestic abuse, which happens behind doors, nor suspicion or "
        "police-raised categories; docs/analytics.md says why).",
    )
    priorities_bandwidth_m: float = Field(
        500.0, gt=0, description="How far a near-repeat effect reaches (Gaussian sd, m)."
    )
    priorities_kappa: float = Field(
        2.0,
        ge=0,
        description="Pull of an area's usual level toward its neighbours' "
        "(in periods' worth of events).",
    )

    @field_validator("map_tile_url")
    @classmethod
    def _tile_template(cls, url: str | None) -> str | None:
        if url is not None and not all(p in url for p in ("{z}", "{x}", "{y}")):
            raise ValueError("map_tile_url must hold {z}, {x} and {y}")
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
