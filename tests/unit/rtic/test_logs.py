"""Logs: readable text by default, one JSON object a line with RTIC_LOG_FORMAT=json."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import SecretStr

from rtic.logs import JsonLineFormatter, configure_logging, logging_config
from rtic.settings import Settings


@pytest.fixture
def restore_root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    record = logging.LogRecord("streams.app", logging.WARNING, __file__, 1, msg, args, exc_info)
    record.created = datetime(2026, 12, 2, 4, 5, 6, 789000, tzinfo=UTC).timestamp()
    return record


def test_a_json_line_has_time_level_logger_and_message() -> None:
    line = orjson.loads(JsonLineFormatter().format(_record("batch from %s held", "rtic.calls.v1")))
    assert line == {
        "time": "2026-12-02T04:05:06.789+00:00",
        "level": "WARNING",
        "logger": "streams.app",
        "message": "batch from rtic.calls.v1 held",
    }


def test_a_json_line_carries_the_exception_text() -> None:
    text = JsonLineFormatter().format(_record("pipeline failed", exc=True))
    assert "\n" not in text
    line = orjson.loads(text)
    assert line["message"] == "pipeline failed"
    assert "Traceback" in line["exc"] and "ValueError: boom" in line["exc"]


def test_arguments_json_cannot_encode_do_not_lose_the_record() -> None:
    line = orjson.loads(JsonLineFormatter().format(_record("odd %s", {1, 2})))
    assert line["message"].startswith("odd {")


def test_configure_logging_json_writes_one_object_a_line_and_keeps_other_handlers(
    restore_root: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    other = logging.NullHandler()
    restore_root.addHandler(other)
    settings = Settings(log_format="json", token_secret=SecretStr("never-in-a-log-line-0123456789"))
    configure_logging(settings, "info")
    configure_logging(settings, "info")  # again: replaces its own handler, not doubled
    logging.getLogger("cli.test").info("started with %s", settings)
    logging.getLogger("cli.test").debug("not at info")
    lines = [orjson.loads(t) for t in stderr.getvalue().splitlines()]
    assert len(lines) == 1 and lines[0]["logger"] == "cli.test" and lines[0]["level"] == "INFO"
    assert datetime.fromisoformat(lines[0]["time"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert "never-in-a-log-line" not in stderr.getvalue()  # SecretStr prints as stars
    assert other in restore_root.handlers


def test_text_is_the_default(restore_root: logging.Logger, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    configure_logging(Settings(), "warn")
    logging.getLogger("x").warning("plain %d", 1)
    assert stderr.getvalue().rstrip().endswith("WARNING x: plain 1")
    assert restore_root.level == logging.WARNING


def test_the_worker_dict_config_uses_the_same_format(
    restore_root: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    logging.config.dictConfig(logging_config(Settings(log_format="json"), "warn"))
    logging.getLogger("faust.worker").warning("ready")
    logging.getLogger("faust.worker").info("quiet")
    (line,) = stderr.getvalue().splitlines()
    assert orjson.loads(line)["message"] == "ready"


def test_the_log_format_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTIC_LOG_FORMAT", "json")
    assert Settings().log_format == "json"
    monkeypatch.setenv("RTIC_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        Settings()
