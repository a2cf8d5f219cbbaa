"""A real gateway for the portal's evidence tests: uvicorn on a free port, the session's
Tansu, a SQLite database and an evidence folder of the test's own, two cases in it,
and small upload limits (so a test can go over them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from push.gateway import Gateway
from records import open_records
from records.protocols import CaseRow, Records
from rtic.casework import CaseStatus
from rtic.settings import RateLimit, Settings
from rtic.tokens import TokenKeys, issue_token
from tests.force_area import use_force_area_codes

KB = 1024
LIMITS = {
    "evidence_max_image_bytes": 40 * KB,
    "evidence_max_video_bytes": 60 * KB,
    "evidence_max_audio_bytes": 30 * KB,
    "evidence_max_document_bytes": 20 * KB,
    "evidence_max_text_bytes": 4 * KB,
}


@dataclass
class Running:
    gateway: Gateway
    settings: Settings
    records: Records
    base: str
    refs: dict[str, str]  # "mine", "other"
    store: Path

    def ticket(self, role: str, sub: str, **kw: Any) -> str:
        from tests.engine import store_ticket

        return store_ticket(self.settings, role, sub, **kw)

    def token(self, role: str, sub: str, **kw: Any) -> str:
        return issue_token(
            TokenKeys.from_settings(self.settings),
            sub=sub,
            role=role,
            now=datetime.now(UTC),
            ttl_seconds=600,
            **kw,
        )

    def auth(self, role: str, sub: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, sub, **kw)}"}

    def citizen(self, ref: str | None = None) -> dict[str, str]:
        ref = ref or self.refs["mine"]
        return self.auth("citizen", f"citizen-{ref}", cases=[ref])

    def files_on_disk(self) -> list[Path]:
        return sorted(p for p in self.store.rglob("*") if p.is_file())


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, tmp_path: Path, unique: Callable[[str], str]
) -> AsyncIterator[Running]:
    """The gateway serving until the block ends; cases "mine" (officer OFF-mine) and
    "other" (OFF-other), both in area E08000026 (Coventry)."""
    settings = settings.model_copy(
        update={
            **LIMITS,
            "evidence_dir": tmp_path / "evidence",
            "rate_limits": {"evidence_upload": RateLimit(burst=1000, per_minute=1000)},
        }
    )
    records = await open_records(f"sqlite+aiosqlite:///{tmp_path / 'records.sqlite3'}")
    now = datetime.now(UTC)
    number = int(unique("n")[-6:])
    refs = {"mine": f"WM-2026-{number:07d}", "other": f"WM-2026-{number + 1:07d}"}
    for key, ref in refs.items():
        await records.cases.save(
            CaseRow(
                case_ref=ref,
                status=CaseStatus.UNDER_INVESTIGATION,
                category="burglary",
                officer_in_charge=f"OFF-{key}",
                area=["E08000026"],
                opened_at=now,
                updated_at=now,
            )
        )
    gateway = use_force_area_codes(Gateway(settings, records=records))
    serving = asyncio.create_task(gateway.run())
    try:
        while gateway.serving is None or not gateway.serving.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.05)
        yield Running(
            gateway,
            settings,
            records,
            f"http://127.0.0.1:{settings.gateway_port}",
            refs,
            tmp_path / "evidence",
        )
    finally:
        if gateway.serving is not None:
            gateway.serving.should_exit = True
        await asyncio.wait_for(serving, 30)
        await records.close()
