"""Logging for every ``rtic`` command: readable text, or JSON lines for a log shipper.

``configure_logging(settings)`` is called once by the command line before a
command runs; the Faust worker, which sets up logging its own way (it clears
the root's handlers), is given the same configuration as a ``dictConfig``
(``logging_config``). With
``RTIC_LOG_FORMAT=json`` each record is one JSON object on one line of
stderr::

    {"time": "2026-12-02T04:05:06.789Z", "level": "WARNING", "logger": "streams.app",
     "message": "batch from rtic.calls.v1 held, retrying in 0.2s: ...", "exc": "Traceback ..."}

``time`` is the record's creation time in UTC (ISO 8601, milliseconds);
``exc`` is present only when the record carries an exception. Nothing here
adds settings or secrets to a record: secrets are ``SecretStr`` and print as
stars if a message ever includes one.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from rtic.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_rtic_handler"  # on the handler configure_logging installs, to replace it later


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, exc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a message argument orjson cannot encode must not lose the record.
        return orjson.dumps(line, default=str).decode()


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    name = {"warn": "WARNING", "crit": "CRITICAL"}.get(level.lower(), level.upper())
    number = logging.getLevelName(name)
    return number if isinstance(number, int) else logging.INFO


def logging_config(settings: Settings, level: str | int = "info") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` for these settings: one stderr handler on the root."""
    formatter: dict[str, Any] = (
        {"()": JsonLineFormatter} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"rtic": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "rtic",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": _level_number(level), "handlers": ["stderr"]},
    }


def make_formatter(settings: Settings) -> logging.Formatter:
    """The formatter for the settings' ``log_format``."""
    return JsonLineFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings, level: str | int = "info") -> logging.Handler:
    """Send every logger's records to stderr in the settings' format (text or json).

    Replaces the handler an earlier call installed and leaves other handlers on
    the root logger alone (a test runner's capture, for one).

    Args:
        settings: ``log_format`` picks the format.
        level: the root level: a name (``"debug"``, ``"warn"``...) or a number.

    Returns:
        The handler installed on the root logger.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(settings))
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(_level_number(level))
    return handler
