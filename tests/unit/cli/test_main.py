"""The ``rtic`` command line: every scenario is reachable, every group parses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from cli import main as cli_main
from simulators import scenarios
from simulators.scenarios import SCENARIOS


def test_simulate_accepts_every_scenario_of_the_registry() -> None:
    parser = cli_main.build_parser()
    for name in SCENARIOS:
        assert parser.parse_args(["simulate", "--scenario", name]).scenario == name
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--scenario", "no-such-scenario"])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_is_sent_by_rtic_simulate(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[str] = []

    async def fake_send(settings: Any, scenario: str, tag: str, start: datetime) -> list[str]:
        sent.append(scenario)
        return ["e1", "e2"]

    monkeypatch.setattr(scenarios, "send_scenario", fake_send)
    assert cli_main.main(["simulate", "--scenario", name]) == 0
    assert sent == [name]
    out = capsys.readouterr().out
    assert f"scenario {name}" in out and "sent 2 events" in out
    for expected in SCENARIOS[name].expected:
        assert expected.rule_id in out


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--rate", "2", "--no-simulator"],
        ["worker", "--loglevel", "info"],
        ["gateway"],
        ["simulate", "--count", "10", "--preset", "west-midlands"],
        ["replay", "f.jsonl", "--speed", "max"],
        ["record", "--out", "o.jsonl", "--duration", "3"],
        ["token", "--role", "officer", "--sub", "OFF-1", "--case", "C1"],
        ["topics"],
        ["reference", "load", "h.csv", "--kind", "hotlist", "--dry-run"],
        ["rules", "check", "r.yaml"],
        ["rules", "test", "r.yaml", "--events", "e.jsonl"],
        ["rules", "list"],
    ],
)
def test_every_command_parses_to_its_handler(argv: list[str]) -> None:
    args = cli_main.build_parser().parse_args(argv)
    assert callable(args.func) and args.func.__name__.startswith("cmd_")


def test_token_command_signs_with_the_settings_key_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import jwt

    from rtic.settings import get_settings

    monkeypatch.setenv("RTIC_TOKEN_KEY_ID", "2026-12")
    monkeypatch.setenv("RTIC_TOKEN_SECRET", "x" * 40)
    get_settings.cache_clear()
    try:
        assert cli_main.main(["token", "--role", "officer", "--sub", "OFF-1"]) == 0
    finally:
        get_settings.cache_clear()
    token = capsys.readouterr().out.splitlines()[-1]
    assert jwt.get_unverified_header(token)["kid"] == "2026-12"


def test_token_command_carries_areas(capsys: pytest.CaptureFixture[str]) -> None:
    import jwt

    argv = ["token", "--role", "supervisor", "--sub", "S-1", "--area", "E08000025"]
    assert cli_main.main([*argv, "--area", "E08000026"]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["areas"] == ["E08000025", "E08000026"] and len(claims["jti"]) == 32


def test_token_command_issues_a_contact_handler_token(capsys: pytest.CaptureFixture[str]) -> None:
    import jwt

    assert cli_main.main(["token", "--role", "contact_handler", "--sub", "CH-1"]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["role"], claims["sub"]) == ("contact_handler", "CH-1")
