"""``rtic db``, ``rtic audit export`` and ``rtic token revoke`` on a SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli import main as cli_main
from records import open_records
from records.migrate import current, head
from records.protocols import Records, Revocations
from rtic.casework import AuditAction, AuditObject, AuditV1, CaseLinkV1, CaseStatus, LinkKind
from rtic.settings import Settings
from tests.unit.records.contract import make_audit, make_case, make_entry, make_evidence


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}"
    settings = Settings(database_url=url, retention_case_days=365)
    monkeypatch.setattr(cli_main, "get_settings", lambda: settings)
    return url


def _with_records(url: str, work: object) -> object:
    async def run() -> object:
        records = await open_records(url)
        try:
            return await work(records)  # type: ignore[operator]
        finally:
            await records.close()

    return asyncio.run(run())


def test_db_upgrade_downgrade_and_current(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["db", "upgrade"]) == 0
    assert f"at revision {head()}" in capsys.readouterr().out
    assert current(url) == head()
    assert cli_main.main(["db", "downgrade", "base"]) == 0
    assert "none (empty)" in capsys.readouterr().out
    assert current(url) is None
    assert cli_main.main(["db", "current"]) == 0
    assert cli_main.main(["db", "upgrade", "head"]) == 0
    assert current(url) == head()


def test_db_commands_report_a_database_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url="postgresql+asyncpg://rtic:pw@127.0.0.1:1/none")
    monkeypatch.setattr(cli_main, "get_settings", lambda: settings)
    assert cli_main.main(["db", "upgrade"]) == 1
    assert cli_main.main(["db", "purge", "--dry-run"]) == 1
    assert cli_main.main(["token", "revoke", "--jti", "J", "--reason", "lost"]) == 1
    err = capsys.readouterr().err
    assert "db upgrade:" in err and "pw@" not in err


def _seed(url: str) -> None:
    now = datetime.now(UTC)

    async def work(records: Records) -> None:
        old = make_case(1, status=CaseStatus.CLOSED, closed_at=datetime(2020, 3, 1, tzinfo=UTC))
        still_open = make_case(2)
        for n, case in enumerate((old, still_open)):
            await records.cases.save(
                case, [make_entry(case, 1)], [CaseLinkV1(kind=LinkKind.CALL, id=f"C-{n}")]
            )
            await records.cases.save_evidence(make_evidence(n), case.case_ref)
        await records.audit.append([make_audit(1, at=now - timedelta(days=4000))])
        await records.revocations.revoke(jti="J-old", sub=None, by="a", reason="r", at=now)

    _with_records(url, work)


def test_db_purge_before_a_date(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    assert cli_main.main(["db", "purge", "--before", "2021-01-01", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cases before 2021-01-01 00:00 UTC: would delete 1 evidence, 1 timeline_entries" in out
    assert "1 cases" in out and "audit: 1 records older than" in out
    assert "revocations" in out and "0 revocations" in out  # a revocation outlives its tokens
    assert cli_main.main(["db", "purge", "--before", "2021-01-01"]) == 0
    assert (
        "deleted 1 evidence, 1 timeline_entries, 1 case_links, 0 statements, 1 cases"
        in capsys.readouterr().out
    )

    async def check(records: Records) -> None:
        assert await records.cases.get_case(make_case(1).case_ref) is None
        assert await records.cases.get_case(make_case(2).case_ref) is not None
        assert (await records.revocations.revocations()).token_ids == frozenset({"J-old"})
        assert len(await records.audit.for_object(AuditObject.ALERT, "AL-1")) == 1

    _with_records(url, check)


def test_db_purge_by_the_retention_settings(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    assert cli_main.main(["db", "purge", "--kind", "cases"]) == 0
    out = capsys.readouterr().out
    assert "1 cases" in out  # closed in 2020, kept 365 days
    assert "revocations" not in out.split("audit:")[0]


def test_db_purge_refuses_a_future_date(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["db", "purge", "--before", "2999-01-01"]) == 2
    assert "future" in capsys.readouterr().err


def _read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_audit_export_writes_every_field_with_a_header(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = datetime(2026, 5, 1, tzinfo=UTC)
    before = make_audit(1, at=t - timedelta(seconds=1))
    search = make_audit(
        2,
        at=t,
        action=AuditAction.HISTORY_SEARCH,
        object_type=AuditObject.PLATE,
        object_id="AB12CDE",
        reason='stolen, "cloned" plates',
        reference="OP-9",
        detail={"results": 3},
    )
    formula = make_audit(3, at=t + timedelta(seconds=1), reason="=HYPERLINK(1)", origin=None)

    async def work(records: Records) -> None:
        await records.audit.append([before, search, formula])

    _with_records(url, work)
    out = tmp_path / "audit.csv"
    argv = ["audit", "export", "--since", "2026-05-01", "--out", str(out), "--reason", "HMICFRS"]
    assert cli_main.main(argv) == 0
    assert "exported 2 audit records" in capsys.readouterr().err
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0].split(",") == list(AuditV1.model_fields)
    rows = _read_csv(text)
    assert [r["audit_id"] for r in rows] == [search.audit_id, formula.audit_id]
    assert rows[0] == {
        "audit_id": search.audit_id,
        "at": "2026-05-01T00:00:00+00:00",
        "actor": "analyst-1",
        "role": "rtic_analyst",
        "action": "history_search",
        "object_type": "plate",
        "object_id": "AB12CDE",
        "origin": "10.0.0.7",
        "reason": 'stolen, "cloned" plates',
        "reference": "OP-9",
        "detail": json.dumps({"results": 3}),
    }
    assert rows[1]["reason"] == "'=HYPERLINK(1)" and rows[1]["origin"] == ""

    # The export itself is audited, and an export to standard output can read it.
    assert cli_main.main(["audit", "export", "--since", "2026-05-01T00:00:01"]) == 0
    rows = _read_csv(capsys.readouterr().out)
    assert [r["action"] for r in rows] == ["alert_delivered", "audit_exported"]
    assert json.loads(rows[1]["detail"])["rows"] == 2 and rows[1]["reason"] == "HMICFRS"


def test_audit_export_until(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def work(records: Records) -> None:
        await records.audit.append([make_audit(n) for n in range(1, 6)])

    _with_records(url, work)
    argv = ["audit", "export", "--since", "2026-01-01", "--until", "2026-11-24T21:30:03Z"]
    assert cli_main.main(argv) == 0
    assert [r["audit_id"] for r in _read_csv(capsys.readouterr().out)] == ["AUD-00001", "AUD-00002"]


def test_token_revoke_a_token_and_a_subject(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["token", "revoke", "--jti", "J-1", "--reason", "phone lost", "--by", "sgt-1"]
    assert cli_main.main(argv) == 0
    assert "revoked token J-1" in capsys.readouterr().out
    assert cli_main.main(["token", "revoke", "--sub", "OFF-7", "--reason", "left the force"]) == 0
    assert "every token of OFF-7" in capsys.readouterr().out

    async def check(records: Records) -> tuple[Revocations, list[AuditV1]]:
        audit = await records.audit.for_object(AuditObject.TOKEN, "J-1")
        audit += await records.audit.for_object(AuditObject.TOKEN, "OFF-7")
        return await records.revocations.revocations(), audit

    revocations, audit = _with_records(url, check)  # type: ignore[misc]
    assert revocations.token_ids == frozenset({"J-1"})
    assert set(revocations.subjects_before) == {"OFF-7"}
    assert [(a.action, a.actor, a.reason) for a in audit] == [
        (AuditAction.TOKEN_REVOKED, "sgt-1", "phone lost"),
        (AuditAction.TOKEN_REVOKED, "rtic-cli", "left the force"),
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["token", "revoke", "--jti", "J-1"],  # no reason
        ["token", "revoke", "--reason", "r"],  # neither jti nor sub
        ["token", "revoke", "--jti", "J", "--sub", "S", "--reason", "r"],  # both
        ["db", "purge", "--before", "yesterday"],
        ["db", "purge", "--kind", "audit"],
        ["audit", "export"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main.build_parser().parse_args(argv)


def test_token_still_issues_and_needs_role_and_sub(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli_main.build_parser().parse_args(["token", "--role", "officer", "--sub", "OFF-1"])
    assert args.func is cli_main.cmd_token
    args = cli_main.build_parser().parse_args(["token", "revoke", "--sub", "X", "--reason", "r"])
    assert args.func is cli_main.cmd_token_revoke and args.sub == "X" and args.jti is None
    assert cli_main.main(["token", "--role", "officer"]) == 2
    assert "--role and --sub are required" in capsys.readouterr().err
