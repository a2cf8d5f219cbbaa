"""The compose file restarts the long-running parts, and its healthchecks ask the ports
the settings default to (the file itself is not run in the tests: docs/reliability.md)."""

from __future__ import annotations

import yaml

from rtic.settings import PROJECT_ROOT, Settings


def _services() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]


def test_long_running_parts_are_restarted() -> None:
    services = _services()
    for name in ("worker", "cases", "gateway"):
        assert services[name]["restart"] in ("unless-stopped", "on-failure", "always"), name
    for name in ("topics", "migrate"):  # one-shot jobs: run once
        assert services[name]["restart"] == "no", name


def test_healthchecks_ask_each_part_on_its_own_port() -> None:
    services, defaults = _services(), Settings.model_fields
    worker_port = defaults["worker_web_port"].default
    gateway_port = defaults["gateway_port"].default
    worker = " ".join(services["worker"]["healthcheck"]["test"])
    gateway = " ".join(services["gateway"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{worker_port}/healthz" in worker
    assert f"http://127.0.0.1:{gateway_port}/healthz" in gateway
    # Neither part is moved off its default port, which the checks would then miss.
    assert "RTIC_WORKER_WEB_PORT" not in services["worker"]["environment"]
    assert "RTIC_GATEWAY_PORT" not in services["gateway"]["environment"]
