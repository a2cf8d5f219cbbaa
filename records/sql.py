"""The records on SQLAlchemy 2 (async): PostgreSQL in production, SQLite embedded.

``SqlRecords.connect(url)`` opens the database at ``RTIC_DATABASE_URL`` (it does
not migrate: ``records.open_records`` upgrades, then connects) and offers the
stores of ``records.protocols``. Every write is one transaction of a few
statements; every insert is ``INSERT ... ON CONFLICT DO NOTHING`` (or ``DO UPDATE``
for a case) keyed by the record's stable id, so a redelivered message changes
nothing and a batch of 500 audit records is one multi-row statement.

SQLite, embedded: WAL (readers never wait for the writer), foreign keys on, a
busy timeout (processes that write at once take turns instead of failing) and a
real ``BEGIN`` for every transaction (pysqlite's own handling would leave DDL and
reads outside it). A transaction that writes starts with its write, so it waits
for the lock rather than failing on a stale snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, and_, delete, event, func, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from records.models import (
    AuditRecord,
    CaseAccessRecord,
    CaseLinkRecord,
    CaseNumberRecord,
    CaseRecord,
    EvidenceRecord,
    PortalCredentialRecord,
    RevocationRecord,
    StatementRecord,
    TimelineEntryRecord,
)
from records.protocols import (
    FIRST_CONTACT_KINDS,
    AuditStore,
    CaseRow,
    CaseStore,
    CaseView,
    CaseWrite,
    ContactTime,
    PortalCredential,
    PortalStore,
    PurgeReport,
    Revocations,
    RevocationStore,
    StatementRow,
    statement_order,
)
from rtic.casework import (
    AuditObject,
    AuditV1,
    CaseLinkV1,
    CaseStatus,
    EvidenceV1,
    LinkKind,
    TimelineEntryV1,
    stable_id,
)
from rtic.errors import ConfigError, ServiceError

BUSY_TIMEOUT_S = 30.0
LINKS_PER_READ = 500  # ids in one IN (...): well under every driver's parameter limit
PURGEABLE = ("cases", "evidence", "revocations")

_cases = cast(Table, CaseRecord.__table__)
_access = cast(Table, CaseAccessRecord.__table__)
_entries = cast(Table, TimelineEntryRecord.__table__)
_links = cast(Table, CaseLinkRecord.__table__)
_numbers = cast(Table, CaseNumberRecord.__table__)
_evidence = cast(Table, EvidenceRecord.__table__)
_audit = cast(Table, AuditRecord.__table__)
_revocations = cast(Table, RevocationRecord.__table__)
_credentials = cast(Table, PortalCredentialRecord.__table__)
_statements = cast(Table, StatementRecord.__table__)
STATEMENT_RETRIES = 5  # writers of one statement at once: each retries with the next version

_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


def async_url(url: str | URL) -> URL:
    """``url`` with an async driver: plain ``postgresql://`` and ``sqlite://`` get asyncpg
    and aiosqlite; a URL that names its driver keeps it."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def safe_url(url: str | URL) -> str:
    """The URL as it may be logged (no password)."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transactions from the driver: the "begin" hook below issues BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a committed record survives a power cut
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def make_engine(url: str | URL) -> AsyncEngine:
    """An async engine for ``url``; for a SQLite file, its folder is created."""
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True)
    path = sqlite_path(parsed)
    options: dict[str, Any] = {"connect_args": {"timeout": BUSY_TIMEOUT_S}}
    if path is None:
        # In memory: one connection, shared, or every connection would see its own database.
        options["poolclass"] = StaticPool
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed, **options)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    return engine


def _insert(conn: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT (both offer ``on_conflict_do_nothing / do_update``)."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ConfigError(f"records need PostgreSQL or SQLite, not {name}")


async def _insert_new(
    conn: AsyncConnection, table: Table, rows: list[dict[str, Any]], keys: list[str], id_col: str
) -> set[Any]:
    """Insert the rows whose ``keys`` are not stored yet; the ``id_col`` of those inserted.

    One compiled statement, given every row: SQLAlchemy's "insertmanyvalues" sends it as
    multi-row ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING``, up to
    1,000 rows a statement (fewer if the driver's parameter limit says so). Building a
    500-row VALUES clause in Python instead would compile a new statement every batch.
    """
    if not rows:
        return set()
    stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=keys)
    result = await conn.execute(stmt.returning(table.c[id_col]), rows)
    return set(result.scalars().all())


def _case_values(case: CaseRow) -> dict[str, Any]:
    return {
        "case_ref": case.case_ref,
        "status": case.status.value,
        "category": case.category,
        "grade": case.grade,
        "officer_in_charge": case.officer_in_charge,
        "attending": list(case.attending),
        "area": list(case.area),
        "opened_at": case.opened_at,
        "updated_at": case.updated_at,
        "closed_at": case.closed_at,
        "address": case.address,
        "reporter": case.reporter.model_dump(mode="json") if case.reporter else None,
        "secret_hash": case.secret_hash,
        "version": case.version,
    }


def _access_values(case: CaseRow) -> list[dict[str, Any]]:
    officers = {o for o in [case.officer_in_charge, *case.attending] if o}
    rows = [{"case_ref": case.case_ref, "kind": "officer", "value": o} for o in sorted(officers)]
    rows += [
        {"case_ref": case.case_ref, "kind": "area", "value": a} for a in sorted(set(case.area))
    ]
    return rows


def _entry_values(entry: TimelineEntryV1) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "case_ref": entry.case_ref,
        "kind": entry.kind.value,
        "at": entry.at,
        "text": entry.text,
        "citizen_visible": entry.citizen_visible,
        "source": entry.source,
        "staff_note": entry.staff_note,
    }


def _audit_values(record: AuditV1) -> dict[str, Any]:
    values = record.model_dump(mode="json")
    values["at"] = record.at  # the column type stores times; the rest is JSON-ready
    return values


def _first_of_each(entries: Sequence[TimelineEntryV1]) -> list[TimelineEntryV1]:
    """The entries in order, each id once (its first occurrence)."""
    seen: set[str] = set()
    unique = []
    for entry in entries:
        if entry.entry_id not in seen:
            seen.add(entry.entry_id)
            unique.append(entry)
    return unique


async def _upsert_case(conn: AsyncConnection, case: CaseRow) -> None:
    """Insert or update a case's row (and rewrite its access rows), unless the stored
    row is newer."""
    values = _case_values(case)
    stmt = _insert(conn, _cases).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_cases.c.case_ref],
        set_={k: stmt.excluded[k] for k in values if k != "case_ref"},
        # A stale writer (an older version of the case) never undoes a newer one.
        where=_cases.c.version <= stmt.excluded.version,
    ).returning(_cases.c.case_ref)
    if (await conn.execute(stmt)).first() is not None:
        await conn.execute(delete(_access).where(_access.c.case_ref == case.case_ref))
        await _insert_new(
            conn, _access, _access_values(case), ["case_ref", "kind", "value"], "value"
        )


def _case_row(row: Any) -> CaseRow:
    return CaseRow.model_validate(dict(row._mapping))


def _entry(row: Any) -> TimelineEntryV1:
    values = dict(row._mapping)
    values.pop("seq", None)
    return TimelineEntryV1.model_validate(values)


def _audit_record(row: Any) -> AuditV1:
    return AuditV1.model_validate(dict(row._mapping))


class SqlCaseStore:
    """``CaseStore`` on the records database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def next_case_number(self, year: int) -> int:
        # One statement: the row lock (PostgreSQL) or the write lock (SQLite) makes
        # concurrent callers take turns, so each gets its own consecutive number.
        async with self._engine.begin() as conn:
            stmt = _insert(conn, _numbers).values(year=year, last=1)
            stmt = stmt.on_conflict_do_update(
                index_elements=[_numbers.c.year], set_={"last": _numbers.c.last + 1}
            ).returning(_numbers.c.last)
            return int((await conn.execute(stmt)).scalar_one())

    async def case_for_link(self, kind: LinkKind, source_id: str) -> str | None:
        query = select(_links.c.case_ref).where(
            _links.c.kind == kind.value, _links.c.source_id == source_id
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    async def cases_for_links(
        self, keys: Sequence[tuple[LinkKind, str]]
    ) -> dict[tuple[LinkKind, str], str]:
        wanted = set(keys)
        ids = sorted({source_id for _, source_id in wanted})
        found: dict[tuple[LinkKind, str], str] = {}
        async with self._engine.connect() as conn:
            for i in range(0, len(ids), LINKS_PER_READ):
                query = select(_links.c.kind, _links.c.source_id, _links.c.case_ref).where(
                    _links.c.source_id.in_(ids[i : i + LINKS_PER_READ])
                )
                for kind, source_id, case_ref in await conn.execute(query):
                    key = (LinkKind(kind), source_id)
                    if key in wanted:
                        found[key] = case_ref
        return found

    async def get_case(self, case_ref: str) -> CaseRow | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(_cases).where(_cases.c.case_ref == case_ref))).first()
        return _case_row(row) if row else None

    async def save(
        self,
        case: CaseRow,
        entries: Sequence[TimelineEntryV1] = (),
        links: Sequence[CaseLinkV1] = (),
    ) -> list[TimelineEntryV1]:
        return (await self.save_many([CaseWrite(case, entries, links)]))[0]

    async def save_many(self, writes: Sequence[CaseWrite]) -> list[list[TimelineEntryV1]]:
        """All the writes in one transaction of a few statements, whatever their number:
        each case's row upserted once (its newest version: what upserting every write in
        turn would leave), then every entry in one multi-row insert, every link in one."""
        uniques = [_first_of_each(w.entries) for w in writes]
        for write, unique in zip(writes, uniques, strict=True):
            for entry in unique:
                if entry.case_ref != write.case.case_ref:
                    raise ValueError(
                        f"entry {entry.entry_id} is of {entry.case_ref}, not {write.case.case_ref}"
                    )
        if not writes:
            return []
        newest: dict[str, CaseRow] = {}
        for write in writes:
            held = newest.get(write.case.case_ref)
            if held is None or held.version <= write.case.version:
                newest[write.case.case_ref] = write.case
        entries = _first_of_each([e for unique in uniques for e in unique])
        links: dict[tuple[str, str], dict[str, Any]] = {}
        for write in writes:
            for link in write.links:
                links.setdefault(
                    (link.kind.value, link.id),
                    {
                        "case_ref": write.case.case_ref,
                        "kind": link.kind.value,
                        "source_id": link.id,
                    },
                )
        async with self._engine.begin() as conn:
            for case in newest.values():
                await _upsert_case(conn, case)
            new = await _insert_new(
                conn, _entries, [_entry_values(e) for e in entries], ["entry_id"], "entry_id"
            )
            await _insert_new(conn, _links, list(links.values()), ["kind", "source_id"], "seq")
        out: list[list[TimelineEntryV1]] = []
        for unique in uniques:
            out.append([e for e in unique if e.entry_id in new])
            new -= {e.entry_id for e in unique}  # new once: in its first write
        return out

    async def view(self, case_ref: str) -> CaseView | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(_cases).where(_cases.c.case_ref == case_ref))).first()
            if row is None:
                return None
            entries = await conn.execute(
                select(_entries)
                .where(_entries.c.case_ref == case_ref)
                .order_by(_entries.c.at, _entries.c.seq)
            )
            links = await conn.execute(
                select(_links.c.kind, _links.c.source_id)
                .where(_links.c.case_ref == case_ref)
                .order_by(_links.c.seq)
            )
            evidence = await conn.execute(
                select(_evidence.c.data)
                .where(_evidence.c.case_ref == case_ref)
                .order_by(_evidence.c.captured_at, _evidence.c.evidence_id)
            )
            return CaseView(
                case=_case_row(row),
                timeline=[_entry(e) for e in entries],
                links=[CaseLinkV1(kind=LinkKind(k), id=i) for k, i in links],
                evidence=[EvidenceV1.model_validate(d) for (d,) in evidence],
            )

    async def list_cases(
        self,
        *,
        officer: str | None = None,
        areas: Sequence[str] | None = None,
        status: Sequence[CaseStatus] | None = None,
        limit: int = 200,
    ) -> list[CaseRow]:
        query = select(_cases)
        wanted = []
        if officer is not None:
            wanted.append(and_(_access.c.kind == "officer", _access.c.value == officer))
        if areas is not None:
            wanted.append(and_(_access.c.kind == "area", _access.c.value.in_(list(areas))))
        if wanted:
            query = query.where(
                _cases.c.case_ref.in_(select(_access.c.case_ref).where(or_(*wanted)))
            )
        if status is not None:
            query = query.where(_cases.c.status.in_([s.value for s in status]))
        query = query.order_by(_cases.c.opened_at.desc(), _cases.c.case_ref.desc()).limit(limit)
        async with self._engine.connect() as conn:
            return [_case_row(row) for row in await conn.execute(query)]

    async def save_evidence(self, item: EvidenceV1, case_ref: str | None) -> bool:
        values = {
            "evidence_id": item.evidence_id,
            "case_ref": case_ref,
            "incident_id": item.incident_id,
            "captured_at": item.captured_at,
            # As JSON the time would keep its offset: store it in UTC, as the columns do.
            "data": item.model_copy(
                update={"captured_at": item.captured_at.astimezone(UTC)}
            ).model_dump(mode="json"),
        }
        async with self._engine.begin() as conn:
            new = await _insert_new(conn, _evidence, [values], ["evidence_id"], "evidence_id")
            if not new and case_ref is not None:
                # Stored before its case was known: link it now (never move it to another).
                await conn.execute(
                    _evidence.update()
                    .where(_evidence.c.evidence_id == item.evidence_id)
                    .where(_evidence.c.case_ref.is_(None))
                    .values(case_ref=case_ref)
                )
        return bool(new)

    async def get_evidence(self, evidence_id: str) -> tuple[EvidenceV1, str | None] | None:
        query = select(_evidence.c.data, _evidence.c.case_ref).where(
            _evidence.c.evidence_id == evidence_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (EvidenceV1.model_validate(row.data), row.case_ref) if row else None


class SqlAuditStore:
    """``AuditStore`` on the records database: insert and read, nothing else."""

    def __init__(self, engine: AsyncEngine, page: int = 1000) -> None:
        self._engine = engine
        self._page = page

    async def append(self, records: Sequence[AuditV1]) -> int:
        rows = list({r.audit_id: _audit_values(r) for r in records}.values())
        if not rows:
            return 0
        async with self._engine.begin() as conn:
            return len(await _insert_new(conn, _audit, rows, ["audit_id"], "audit_id"))

    async def for_object(
        self, object_type: AuditObject, object_id: str, limit: int = 500
    ) -> list[AuditV1]:
        query = (
            select(_audit)
            .where(_audit.c.object_type == object_type.value, _audit.c.object_id == object_id)
            .order_by(_audit.c.at, _audit.c.audit_id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_audit_record(row) for row in await conn.execute(query)]

    async def since(self, at: datetime) -> AsyncGenerator[AuditV1, None]:
        """Every record at or after ``at``, oldest first, read a page at a time (keyset on
        time and id, so no page is held open while the caller writes)."""
        after: tuple[datetime, str] | None = None
        while True:
            query = select(_audit).order_by(_audit.c.at, _audit.c.audit_id).limit(self._page)
            if after is None:
                query = query.where(_audit.c.at >= at)
            else:
                query = query.where(
                    or_(
                        _audit.c.at > after[0],
                        and_(_audit.c.at == after[0], _audit.c.audit_id > after[1]),
                    )
                )
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            for row in rows:
                yield _audit_record(row)
            if len(rows) < self._page:
                return
            after = (rows[-1].at, rows[-1].audit_id)

    async def count_before(self, before: datetime) -> int:
        """How many records are older than ``before`` (past retention: to archive)."""
        query = select(func.count()).select_from(_audit).where(_audit.c.at < before)
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


class SqlRevocationStore:
    """``RevocationStore`` on the records database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def revoke(
        self, *, jti: str | None, sub: str | None, by: str, reason: str, at: datetime
    ) -> None:
        if (jti is None) == (sub is None):
            raise ValueError("revoke one token (jti) or one subject's tokens (sub)")
        row = {
            "revocation_id": stable_id("rev", jti or "", sub or "", at.isoformat()),
            "jti": jti,
            "sub": sub,
            "revoked_by": by,
            "reason": reason,
            "at": at,
        }
        async with self._engine.begin() as conn:
            await _insert_new(conn, _revocations, [row], ["revocation_id"], "revocation_id")

    async def revocations(self) -> Revocations:
        async with self._engine.connect() as conn:
            jtis = await conn.execute(
                select(_revocations.c.jti).where(_revocations.c.jti.is_not(None))
            )
            subs = await conn.execute(
                select(_revocations.c.sub, func.max(_revocations.c.at))
                .where(_revocations.c.sub.is_not(None))
                .group_by(_revocations.c.sub)
            )
            # max() keeps its argument's type, so times come back aware on both dialects.
            before = {sub: at for sub, at in subs}
            return Revocations(token_ids=frozenset(jtis.scalars()), subjects_before=before)


class SqlPortalStore:
    """``PortalStore`` on the records database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save_credential(self, credential: PortalCredential) -> bool:
        async with self._engine.begin() as conn:
            new = await _insert_new(
                conn, _credentials, [credential.model_dump()], ["case_ref"], "case_ref"
            )
        return bool(new)

    async def get_credential(self, case_ref: str) -> PortalCredential | None:
        query = select(_credentials).where(_credentials.c.case_ref == case_ref)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return PortalCredential.model_validate(dict(row._mapping)) if row else None

    async def add_statement(self, statement: StatementRow, *, amends: bool) -> StatementRow | None:
        for _ in range(STATEMENT_RETRIES):
            async with self._engine.begin() as conn:
                # The write first (a no-op update), so SQLite takes its lock before reading.
                await conn.execute(
                    _statements.update()
                    .where(_statements.c.statement_id == statement.statement_id)
                    .where(_statements.c.version == 0)
                    .values(version=0)
                )
                query = select(_statements.c.case_ref, _statements.c.by).where(
                    _statements.c.statement_id == statement.statement_id
                )
                owners = set((await conn.execute(query)).all())
                last = (
                    await conn.execute(
                        select(func.max(_statements.c.version)).where(
                            _statements.c.statement_id == statement.statement_id
                        )
                    )
                ).scalar_one()
                if amends != bool(owners) or (
                    owners and owners != {(statement.case_ref, statement.by)}
                ):
                    return None
                row = statement.model_copy(update={"version": int(last or 0) + 1})
                new = await _insert_new(
                    conn, _statements, [row.model_dump()], ["statement_id", "version"], "version"
                )
            if new:
                return _stored_statement(row)
        raise ServiceError(f"statement {statement.statement_id}: too many writers at once")

    async def statements(self, case_ref: str) -> list[StatementRow]:
        query = select(_statements).where(_statements.c.case_ref == case_ref)
        async with self._engine.connect() as conn:
            rows = [
                StatementRow.model_validate(dict(r._mapping)) for r in await conn.execute(query)
            ]
        return statement_order(rows)

    async def contact_times(
        self, grade: int | None, since: datetime, limit: int = 5000
    ) -> list[ContactTime]:
        first = func.min(_entries.c.at)  # keeps the column's type: aware on both dialects
        kinds = [k.value for k in FIRST_CONTACT_KINDS]
        joined = _cases.outerjoin(
            _entries, and_(_entries.c.case_ref == _cases.c.case_ref, _entries.c.kind.in_(kinds))
        )
        closed = CaseStatus.CLOSED.value
        query = (
            select(_cases.c.case_ref, _cases.c.opened_at, _cases.c.status, first)
            .select_from(joined)
            .where(_cases.c.grade.is_(None) if grade is None else _cases.c.grade == grade)
            .where(or_(_cases.c.status != closed, _cases.c.opened_at >= since))
            .group_by(_cases.c.case_ref, _cases.c.opened_at, _cases.c.status)
            .order_by(_cases.c.opened_at.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            ContactTime(ref, opened, _aware(contact), status == closed)
            for ref, opened, status, contact in rows
        ]


def _aware(at: datetime | str | None) -> datetime | None:
    """A time an aggregate gave back (SQLite may give text) as an aware UTC datetime."""
    if at is None:
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _stored_statement(row: StatementRow) -> StatementRow:
    return row.model_copy(update={"at": row.at.astimezone(UTC)})


class SqlRecords:
    """The stores of one database (``Records``) and its upkeep."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.cases: CaseStore = SqlCaseStore(engine)
        self.audit_store = SqlAuditStore(engine)
        self.audit: AuditStore = self.audit_store
        self.revocations: RevocationStore = SqlRevocationStore(engine)
        self.portal: PortalStore = SqlPortalStore(engine)

    @classmethod
    async def connect(cls, url: str) -> SqlRecords:
        """Open the database at ``url`` (it must answer; migrations are not applied here:
        ``records.open_records`` does both).

        Raises:
            ServiceError: the database does not answer.
        """
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError, SQLAlchemyError) as exc:
            await engine.dispose()
            raise ServiceError(f"database {safe_url(url)} does not answer: {exc}") from exc
        return cls(engine)

    async def purge(
        self, before: datetime, kinds: Sequence[str] | None = None, *, dry_run: bool = False
    ) -> PurgeReport:
        """Delete closed cases (entries, links, evidence) closed before ``before``, evidence
        metadata of no case captured before it, and revocations made before it. With
        ``dry_run`` the counts are the same and nothing is deleted (rolled back).

        Raises:
            ValueError: an unknown kind, or ``audit`` (never purged).
        """
        chosen = _purge_kinds(kinds)
        deleted: dict[str, int] = {}
        async with self.engine.connect() as conn:
            transaction = await conn.begin()
            try:
                if "cases" in chosen:
                    deleted.update(await _purge_cases(conn, before))
                if "evidence" in chosen:
                    stmt = delete(_evidence).where(
                        _evidence.c.case_ref.is_(None), _evidence.c.captured_at < before
                    )
                    deleted["evidence"] = (
                        deleted.get("evidence", 0) + (await conn.execute(stmt)).rowcount
                    )
                if "revocations" in chosen:
                    stmt = delete(_revocations).where(_revocations.c.at < before)
                    deleted["revocations"] = (await conn.execute(stmt)).rowcount
            except BaseException:
                await transaction.rollback()
                raise
            if dry_run:
                await transaction.rollback()
            else:
                await transaction.commit()
        return PurgeReport(deleted=deleted)

    async def close(self) -> None:
        await self.engine.dispose()


def _purge_kinds(kinds: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(kinds) if kinds is not None else PURGEABLE
    if "audit" in chosen:
        raise ValueError("audit records are never purged: archive them (docs/records.md)")
    unknown = sorted(set(chosen) - set(PURGEABLE))
    if unknown:
        raise ValueError(f"unknown record kinds {unknown}; purgeable: {', '.join(PURGEABLE)}")
    return chosen


async def _purge_cases(conn: AsyncConnection, before: datetime) -> dict[str, int]:
    """Closed cases closed before ``before``, with everything that hangs off them. Each
    statement deletes (no read first), so on SQLite the transaction waits for the lock
    instead of failing on a stale snapshot."""
    closed = select(_cases.c.case_ref).where(
        _cases.c.status == CaseStatus.CLOSED.value, _cases.c.closed_at < before
    )
    counts: dict[str, int] = {}
    for name, table in (
        ("evidence", _evidence),
        ("timeline_entries", _entries),
        ("case_links", _links),
        ("statements", _statements),
        ("case_access", _access),
        ("portal_credentials", _credentials),
    ):
        result = await conn.execute(delete(table).where(table.c.case_ref.in_(closed)))
        counts[name] = result.rowcount
    counts.pop("case_access")  # bookkeeping, not record types
    counts.pop("portal_credentials")
    result = await conn.execute(
        delete(_cases).where(
            _cases.c.status == CaseStatus.CLOSED.value, _cases.c.closed_at < before
        )
    )
    counts["cases"] = result.rowcount
    return counts
