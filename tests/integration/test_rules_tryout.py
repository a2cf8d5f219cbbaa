"""`rtic rules test`: a rule file run over recorded events on the event clock, with real Redis."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from cli.main import main
from tests.conftest import NOW, make_call, make_hotlist_change, make_read

pytestmark = pytest.mark.integration


def _events(tmp_path: Path) -> Path:
    lines = [make_hotlist_change(vrm="TT11 EST", reason="stolen")]
    lines += [
        make_call(
            category="asb",
            caller=None,
            location={"lat": 52.48, "lon": -1.89, "address": "9 Tryout Row"},
            received_at=(NOW + timedelta(days=d)).isoformat(),
        )
        for d in (0, 5, 12)
    ]
    lines.append(
        make_read(vrm="TT1I E5T", confidence=0.5, read_at=(NOW + timedelta(days=13)).isoformat())
    )
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(orjson.dumps(line).decode() for line in lines))
    return path


def test_what_would_fire_and_how_a_threshold_changes_it(
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rtic.settings import get_settings

    monkeypatch.setenv("RTIC_REDIS_URL", redis_url)
    get_settings.cache_clear()
    events = _events(tmp_path)
    default = tmp_path / "default.yaml"
    default.write_text("rules: {}\n")
    assert main(["rules", "test", str(default), "--events", str(events)]) == 0
    out = capsys.readouterr().out
    assert (
        "2 alerts would have fired" in out
        and "anpr_hotlist_hit: 1" in out
        and "repeat_calls: 1" in out
    )
    assert "the 3rd call in 28 days" in out and "why:" in out
    strict = tmp_path / "strict.yaml"
    strict.write_text("rules:\n  anpr_hotlist_hit:\n    params: {min_confidence: 0.6}\n")
    assert main(["rules", "test", str(strict), "--events", str(events)]) == 0
    assert "anpr_hotlist_hit: 0" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  nope: {}\n")
    assert main(["rules", "check", str(bad)]) == 1
    assert "line 2" in capsys.readouterr().out
    get_settings.cache_clear()
