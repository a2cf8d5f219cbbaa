"""The ``rtic`` command: one entry point, a subcommand per part of the system.

rtic up          everything on one machine (embedded default)
rtic worker      the Faust stream worker
rtic gateway     the websockets push gateway and dashboards
rtic cases       the case worker: cases and the audit trail into the database
rtic simulate    a demand simulator feeding the input topics
rtic token       print a bearer token (or --link: a page with a login ticket); rtic token revoke
rtic topics      create the contract's topics
rtic db          upgrade, downgrade or purge the records database
rtic audit       export the audit trail as CSV
rtic replay      send recorded events; rtic record captures them
rtic reference   load reference data (hotlists, markers, places...)
rtic rules       check, test and list rules
rtic data        build the shipped data extracts (outcomes for the portal's "what happens next")
rtic analytics   patrol priorities from police open data, and their evaluation (cli/analytics.py)
rtic bench       the benchmark suite (a source checkout's benchmarks/suite.py)
rtic faults      the fault suite and the soak (a source checkout's benchmarks/faults.py)

Every command logs through ``rtic.logs.configure_logging`` (text, or JSON
lines with ``RTIC_LOG_FORMAT=json``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from cli.analytics import add_analytics_commands
from rtic.logs import configure_logging
from rtic.schemas import Role
from rtic.settings import DEV_TOKEN_SECRET, get_settings

REFERENCE_KINDS = (
    "hotlist",
    "person_marker",
    "address_marker",
    "geofence",
    "place",
    "snooze",
    "boundaries",
)


def cmd_token(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    from cli.links import refuse_insecure_secrets, ticket_link
    from rtic.errors import ConfigError
    from rtic.tokens import TokenKeys, issue_token

    if args.role is None or args.sub is None:  # optional only so 'token revoke' parses
        print("token: --role and --sub are required", file=sys.stderr)
        return 2
    settings = get_settings()
    if (refused := refuse_insecure_secrets(settings, "token")) is not None:
        return refused
    if settings.token_secret.get_secret_value() == DEV_TOKEN_SECRET:
        print("note: signed with the development secret (set RTIC_TOKEN_SECRET)", file=sys.stderr)
    if args.link:
        base = args.base or f"http://{settings.gateway_host}:{settings.gateway_port}"
        try:
            link = ticket_link(
                settings,
                base=base.rstrip("/"),
                sub=args.sub,
                role=args.role,
                now=datetime.now(UTC),
                cases=args.case or (),
                areas=args.area or (),
            )
        except ConfigError as exc:
            print(f"token: {exc}", file=sys.stderr)
            return 2
        except (OSError, RedisError) as exc:
            print(f"token: Redis at {settings.redis_url} did not answer: {exc}", file=sys.stderr)
            return 1
        minutes = settings.login_ticket_ttl_seconds / 60
        print(f"{args.role} link for {args.sub} (one use, within {minutes:g} minutes):")
        print(link)
        return 0
    token = issue_token(
        TokenKeys.from_settings(settings),
        sub=args.sub,
        role=args.role,
        now=datetime.now(UTC),
        ttl_seconds=args.ttl or settings.token_ttl_seconds,
        cases=args.case or (),
        areas=args.area or (),
    )
    print(f"{args.role} token for {args.sub}:")
    print(token)
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from rtic.errors import ServiceError
    from rtic.kafka import ensure_topics_sync
    from rtic.topics import Topics

    settings = get_settings()
    topics = Topics.with_prefix(settings.topic_prefix)
    try:
        ensure_topics_sync(settings.kafka_url, topics.all(), settings.topic_partitions)
    except ServiceError as exc:
        print(f"topics: {exc}", file=sys.stderr)
        return 1
    print("\n".join(topics.all()))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from rtic.kafka import ensure_topics
    from rtic.logs import logging_config
    from rtic.runtime import tune_gc
    from rtic.topics import Topics
    from streams.app import create_app

    settings = get_settings()
    topics = Topics.with_prefix(settings.topic_prefix)
    asyncio.run(ensure_topics(settings.kafka_url, topics.all(), settings.topic_partitions))
    app = create_app(settings)
    app.rtic_pipeline()  # type: ignore[attr-defined]  # load reference data before joining
    tune_gc()
    # Faust sets up logging itself: give it the same configuration as every command.
    worker = Worker(
        app,
        loglevel=args.loglevel,
        quiet=True,
        logging_config=logging_config(settings, args.loglevel),
    )
    # No terminal spinner: Faust's leaves the root logger at DEBUG for it, so every
    # library's debug call (aiokafka's, per message sent) builds a record for nothing.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


def cmd_cases(args: argparse.Namespace) -> int:
    from faust.worker import Worker
    from sqlalchemy.exc import SQLAlchemyError

    from enrichers.geo import GeoIndex
    from records.migrate import upgrade
    from records.sql import safe_url
    from rtic.errors import ServiceError
    from rtic.kafka import ensure_topics
    from rtic.logs import logging_config
    from rtic.topics import Topics
    from streams.casework import create_case_app

    settings = get_settings()
    topics = Topics.with_prefix(settings.topic_prefix)
    try:
        upgrade(settings.database_url)  # the database at the code's version before any write
    except (ServiceError, SQLAlchemyError, OSError) as exc:
        print(f"cases: database {safe_url(settings.database_url)}: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(ensure_topics(settings.kafka_url, topics.all(), settings.topic_partitions))
    except ServiceError as exc:
        print(f"cases: {exc}", file=sys.stderr)
        return 1
    geo = GeoIndex.load(settings.data_dir)  # the area codes of a case: who supervises it
    app = create_case_app(settings, area_codes=geo.codes_at)
    worker = Worker(
        app,
        loglevel=args.loglevel,
        quiet=True,
        logging_config=logging_config(settings, args.loglevel),
    )
    # No terminal spinner: Faust's leaves the root logger at DEBUG for it, so every
    # library's debug call (aiokafka's, per message sent) builds a record for nothing.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    from cli.links import DEVELOPMENT_WARNING, refuse_insecure_secrets
    from push.gateway import run_gateway
    from rtic.tokens import uses_development_secret

    if (refused := refuse_insecure_secrets(get_settings(), "gateway")) is not None:
        return refused
    if uses_development_secret(get_settings()):
        logging.getLogger("push.gateway").warning(DEVELOPMENT_WARNING)
    # Every HTTP request would log two lines at INFO; keep warnings and errors.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    asyncio.run(run_gateway(get_settings()))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulators.demand import lsoa_weights_from_csv, run_simulator

    if args.scenario:
        return _run_scenario(args.scenario)
    weights = None
    if args.lsoa_weights:
        try:
            weights = lsoa_weights_from_csv(Path(args.lsoa_weights).read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            print(f"simulate: {exc}", file=sys.stderr)
            return 2
    return asyncio.run(
        run_simulator(
            get_settings(),
            rate=args.rate,
            seed=args.seed,
            duration=args.duration,
            count=args.count,
            preset=args.preset,
            lsoa_weights=weights,
        )
    )


def cmd_reference_load(args: argparse.Namespace) -> int:
    from pathlib import Path

    from enrichers.reference_files import parse_reference_file
    from rtic.errors import ContractError, ServiceError

    path = Path(args.path)
    if not path.is_file():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    if args.kind == "boundaries":
        print(
            "boundaries are loaded when a worker starts, from RTIC_DATA_DIR/boundaries/<level>/: "
            "put the GeoJSON there and restart the workers",
            file=sys.stderr,
        )
        return 2
    try:
        report = parse_reference_file(path, path.read_text(encoding="utf-8"), args.kind)
    except (ContractError, UnicodeDecodeError) as exc:
        print(f"{path.name}: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    if args.dry_run or not report.changes:
        return 1 if report.rejected else 0
    try:
        topic = _send_reference_changes(report.changes, path.name)
    except ServiceError as exc:
        print(f"reference load: {exc}", file=sys.stderr)
        return 1
    print(f"sent {len(report.changes)} changes to {topic}")
    return 1 if report.rejected else 0


def _send_reference_changes(changes: list[Any], name: str) -> str:
    """Send reference changes with a synchronous producer (kafka-python); returns the topic."""
    from kafka.errors import KafkaError

    from rtic.errors import ServiceError
    from rtic.kafka import ensure_topics_sync, make_sync_producer
    from rtic.schemas import dumps
    from rtic.topics import Topics
    from simulators.progress import progress_bar

    settings = get_settings()
    topics = Topics.with_prefix(settings.topic_prefix)
    ensure_topics_sync(settings.kafka_url, topics.all(), settings.topic_partitions)
    producer = make_sync_producer(settings.kafka_url)
    try:
        with progress_bar(f"load {name}", total=len(changes), unit="changes") as bar:
            futures = []
            for change in changes:
                futures.append(
                    producer.send(topics.reference, dumps(change), key=change.id.encode())
                )
                bar.advance()
            producer.flush()
            for future in futures:  # raise the first delivery error, if any
                future.get(timeout=30)
    except KafkaError as exc:
        raise ServiceError(f"could not send to {topics.reference}: {exc}") from exc
    finally:
        producer.close()
    return topics.reference


def _run_scenario(name: str) -> int:
    import secrets

    from simulators.scenarios import SCENARIOS, send_scenario

    if name not in SCENARIOS:
        print(f"unknown scenario {name!r}; one of: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    scenario = SCENARIOS[name]
    tag = secrets.token_hex(3).upper()
    sent = asyncio.run(send_scenario(get_settings(), name, tag, datetime.now(UTC)))
    print(f"scenario {name} ({tag}): {scenario.description}")
    print(f"sent {len(sent)} events; expected alerts:")
    for exp in scenario.expected:
        print(f"  {exp.count} x {exp.rule_id}")
    if scenario.needs_rules:
        print(f"  (needs rules not in the catalogue yet: {', '.join(scenario.needs_rules)})")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulators.replay import run_replay

    speed = None if args.speed == "max" else float(args.speed)
    if speed is not None and speed <= 0:
        print("--speed must be positive or 'max'", file=sys.stderr)
        return 2
    mapping = Path(args.mapping) if args.mapping else None
    return asyncio.run(run_replay(get_settings(), Path(args.path), speed=speed, mapping=mapping))


def cmd_record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulators.replay import run_record

    return asyncio.run(
        run_record(
            get_settings(),
            Path(args.out),
            duration=args.duration,
            from_beginning=args.from_beginning,
        )
    )


def cmd_rules_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rules.catalogue import default_rules
    from rules.config import RuleFileError, load_rule_file

    path = Path(args.path)
    try:
        load_rule_file(path.read_text(encoding="utf-8"), default_rules(get_settings()), str(path))
    except OSError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    except RuleFileError as exc:
        print(exc)
        return 1
    print(f"{path}: OK")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cli.services import redis_answers, start_embedded_redis
    from cli.tryout import load_events, report, run_rules_over
    from enrichers.geo import GeoIndex
    from rules.catalogue import default_rules
    from rules.config import RuleFileError, load_rule_file
    from simulators.replay import AdapterReport

    settings = get_settings()
    try:
        rules = load_rule_file(
            Path(args.path).read_text(encoding="utf-8"), default_rules(settings), args.path
        )
    except (OSError, RuleFileError) as exc:
        print(exc, file=sys.stderr)
        return 1
    adapter = AdapterReport()
    try:
        events = load_events(Path(args.events), adapter)
    except Exception as exc:
        print(f"{args.events}: {exc}", file=sys.stderr)
        return 2
    print(adapter.summary(), file=sys.stderr)
    embedded = None if redis_answers(settings.redis_url) else start_embedded_redis()
    try:
        alerts = asyncio.run(
            run_rules_over(
                events,
                rules,
                GeoIndex.load(settings.data_dir),
                embedded.url if embedded else settings.redis_url,
            )
        )
    finally:
        if embedded:
            embedded.stop()
    print(report(alerts, rules))
    return 0


def cmd_rules_list(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rules.catalogue import default_rules
    from rules.config import RuleFileError, describe, load_rule_file

    rules = default_rules(get_settings())
    if args.file:
        try:
            rules = load_rule_file(Path(args.file).read_text(encoding="utf-8"), rules, args.file)
        except (OSError, RuleFileError) as exc:
            print(exc, file=sys.stderr)
            return 1
    print(describe(rules))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from cli.up import run_up

    return run_up(get_settings(), rate=args.rate, seed=args.seed, simulate=not args.no_simulator)


def _add_run_commands(sub: Any) -> None:
    """The long-running parts: up, worker, gateway, cases."""
    p = sub.add_parser("up", help="run the whole system on one machine (embedded default)")
    p.add_argument("--rate", type=float, default=5.0, help="simulated events per second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-simulator", action="store_true", help="start without demand")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("worker", help="run the Faust stream worker")
    p.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"])
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("gateway", help="run the websockets push gateway and dashboards")
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser("cases", help="run the case worker: cases and the audit trail")
    p.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"])
    p.set_defaults(func=cmd_cases)


def _add_simulator_commands(sub: Any) -> None:
    """Data in and out of the input topics: simulate, replay, record."""
    from simulators.scenarios import SCENARIOS

    p = sub.add_parser("simulate", help="produce simulated demand to the input topics")
    p.add_argument("--rate", type=float, default=5.0, help="events per second")
    p.add_argument("--seed", type=int, default=1, help="same seed, same events")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--count", type=int, default=None, help="stop after this many events")
    p.add_argument(
        "--preset",
        choices=["west-midlands", "national-anpr"],
        help="real volumes instead of --rate",
    )
    p.add_argument(
        "--scenario",
        choices=list(SCENARIOS),
        help="send one scripted situation instead of demand (docs/simulators.md)",
    )
    p.add_argument(
        "--lsoa-weights", help="CSV: police open-data crimes (counted per LSOA) or lsoa,weight"
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "replay", help="send recorded events to the input topics, keeping their timing"
    )
    p.add_argument("path", help="JSON Lines (contract events or 'rtic record' output) or CSV")
    p.add_argument("--speed", default="1", help="1 = real time, 60 = a minute a second, or 'max'")
    p.add_argument(
        "--mapping", help="column mapping (YAML) for a CSV of calls; see simulators/mappings/"
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("record", help="capture the live input topics to JSON Lines for replay")
    p.add_argument("--out", required=True, help="file to append to")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest message kept")
    p.set_defaults(func=cmd_record)


def _add_reference_commands(sub: Any) -> None:
    """``rtic reference load``."""
    p = sub.add_parser(
        "reference", help="reference data: hotlists, markers, geofences, places, snoozes"
    )
    ref = p.add_subparsers(dest="reference_command", required=True)
    p = ref.add_parser("load", help="validate a file and send its entries to rtic.reference.v1")
    p.add_argument("path", help=".csv, .json, .jsonl or .geojson")
    p.add_argument(
        "--kind", choices=REFERENCE_KINDS, help="what the rows are (default: from the file)"
    )
    p.add_argument("--dry-run", action="store_true", help="validate and report only")
    p.set_defaults(func=cmd_reference_load)


def _add_rules_commands(sub: Any) -> None:
    """``rtic rules check | test | list``."""
    p = sub.add_parser("rules", help="the rule catalogue and rule files")
    rules_sub = p.add_subparsers(dest="rules_command", required=True)
    p = rules_sub.add_parser("check", help="validate a rule file: every problem with its line")
    p.add_argument("path")
    p.set_defaults(func=cmd_rules_check)
    p = rules_sub.add_parser(
        "test", help="run a rule file over recorded events and print what would fire"
    )
    p.add_argument("path", help="the rule file")
    p.add_argument(
        "--events", required=True, help="JSON Lines of events (or any file rtic replay reads)"
    )
    p.set_defaults(func=cmd_rules_test)
    p = rules_sub.add_parser("list", help="the catalogue, as configured by a rule file if given")
    p.add_argument("file", nargs="?")
    p.set_defaults(func=cmd_rules_list)


def _add_admin_commands(sub: Any) -> None:
    """One-shot tools: token, topics."""
    p = sub.add_parser("token", help="print a bearer token (alone on the last line)")
    p.add_argument("--role", choices=[r.value for r in Role], help="required")
    p.add_argument("--sub", help="subject: user or officer id (required)")
    p.add_argument("--case", action="append", help="case reference in scope (repeatable)")
    p.add_argument("--area", action="append", help="area code looked after (repeatable)")
    p.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    p.add_argument(
        "--link",
        action="store_true",
        help="print the role's page address with a login ticket (one use, minutes; kept "
        "in Redis) instead of a token",
    )
    p.add_argument("--base", default=None, help="the gateway's address for --link")
    p.set_defaults(func=cmd_token)
    _add_token_revoke_command(p)

    p = sub.add_parser("topics", help="create the contract's topics if missing")
    p.set_defaults(func=cmd_topics)


# ---- the records: rtic db, rtic audit export, rtic token revoke -----------------------------

PURGE_KINDS = ("cases", "evidence", "revocations")
CLI_ACTOR = "rtic-cli"


def _utc_time(text: str) -> datetime:
    """A date (midnight UTC) or an ISO time (UTC unless it names its zone)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or an ISO time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _db_errors() -> tuple[type[Exception], ...]:
    """What a database that is down, unreachable or refusing raises (SQLAlchemy loads late)."""
    from sqlalchemy.exc import SQLAlchemyError

    from rtic.errors import ServiceError

    return (ServiceError, OSError, SQLAlchemyError)


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from records import migrate
    from records.sql import safe_url

    url = get_settings().database_url
    try:
        if args.db_command == "upgrade":
            migrate.upgrade(url, args.revision)
        elif args.db_command == "downgrade":
            migrate.downgrade(url, args.revision)
        revision = migrate.current(url)
    except _db_errors() as exc:
        print(f"db {args.db_command}: {exc}", file=sys.stderr)
        return 1
    print(f"{safe_url(url)}: at revision {revision or 'none (empty)'} (newest: {migrate.head()})")
    return 0


def _purge_cutoffs(args: argparse.Namespace, now: datetime) -> dict[str, datetime]:
    """Each kind's cutoff: --before, or now minus its retention period; a revocation is
    always kept as long as a token lives (dropping it would let its token in again)."""
    from datetime import timedelta

    settings = get_settings()
    policy = {
        "cases": settings.retention_case_days,
        "evidence": settings.retention_evidence_days,
        "revocations": settings.retention_revocation_days,
    }
    cutoffs = {
        kind: args.before or now - timedelta(days=policy[kind]) for kind in args.kind or PURGE_KINDS
    }
    if "revocations" in cutoffs:
        latest = now - timedelta(seconds=settings.token_ttl_seconds)
        cutoffs["revocations"] = min(cutoffs["revocations"], latest)
    return cutoffs


async def _purge(cutoffs: dict[str, datetime], dry_run: bool, now: datetime) -> list[str]:
    from datetime import timedelta

    from records.migrate import upgrade_engine
    from records.sql import SqlRecords

    settings = get_settings()
    records = await SqlRecords.connect(settings.database_url)
    try:
        await upgrade_engine(records.engine)
        verb = "would delete" if dry_run else "deleted"
        lines = []
        for kind, before in cutoffs.items():
            report = await records.purge(before, [kind], dry_run=dry_run)
            counts = ", ".join(f"{n} {name}" for name, n in report.deleted.items())
            lines.append(f"{kind} before {before:%Y-%m-%d %H:%M} UTC: {verb} {counts}")
        audit_before = now - timedelta(days=settings.retention_audit_days)
        old = await records.audit_store.count_before(audit_before)
        lines.append(
            f"audit: {old} records older than {audit_before:%Y-%m-%d} (retention "
            f"{settings.retention_audit_days} days); never deleted here: archive them as "
            "docs/records.md says"
        )
        return lines
    finally:
        await records.close()


def cmd_db_purge(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if args.before is not None and args.before > now:
        print("db purge: --before is in the future", file=sys.stderr)
        return 2
    try:
        lines = asyncio.run(_purge(_purge_cutoffs(args, now), args.dry_run, now))
    except _db_errors() as exc:
        print(f"db purge: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _csv_cell(value: Any) -> str:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with a leading '."""
    import json

    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def _export_audit(args: argparse.Namespace, out: Any) -> int:
    import contextlib
    import csv

    from records.migrate import upgrade_engine
    from records.sql import SqlRecords
    from rtic.casework import AuditAction, AuditObject, AuditV1, stable_id

    records = await SqlRecords.connect(get_settings().database_url)
    try:
        await upgrade_engine(records.engine)
        fields = list(AuditV1.model_fields)
        writer = csv.writer(out)
        writer.writerow(fields)
        rows = 0
        async with contextlib.aclosing(records.audit_store.since(args.since)) as stream:
            async for record in stream:
                if args.until is not None and record.at >= args.until:
                    break
                writer.writerow([_csv_cell(getattr(record, f)) for f in fields])
                rows += 1
        now = datetime.now(UTC)
        detail = {"since": args.since.isoformat(), "rows": rows, "out": args.out}
        if args.until is not None:
            detail["until"] = args.until.isoformat()
        await records.audit.append(
            [
                AuditV1(
                    audit_id=stable_id("aud", "export", args.by, now.isoformat()),
                    at=now,
                    actor=args.by,
                    role="system",
                    action=AuditAction.AUDIT_EXPORTED,
                    object_type=AuditObject.AUDIT,
                    object_id="export",
                    origin="rtic audit export",
                    reason=args.reason,
                    detail=detail,
                )
            ]
        )
        return rows
    finally:
        await records.close()


def cmd_audit_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        if args.out == "-":
            rows = asyncio.run(_export_audit(args, sys.stdout))
        else:
            with Path(args.out).open("w", newline="", encoding="utf-8") as out:
                rows = asyncio.run(_export_audit(args, out))
    except _db_errors() as exc:
        print(f"audit export: {exc}", file=sys.stderr)
        return 1
    print(f"exported {rows} audit records to {args.out}", file=sys.stderr)
    return 0


async def _revoke(args: argparse.Namespace, now: datetime) -> None:
    from records import open_records
    from rtic.casework import AuditAction, AuditObject, AuditV1, stable_id

    records = await open_records(get_settings().database_url)
    try:
        await records.revocations.revoke(
            jti=args.jti, sub=args.sub, by=args.by, reason=args.reason, at=now
        )
        subject = args.jti or args.sub
        await records.audit.append(
            [
                AuditV1(
                    audit_id=stable_id("aud", "revoke", args.jti, args.sub, now.isoformat()),
                    at=now,
                    actor=args.by,
                    role="system",
                    action=AuditAction.TOKEN_REVOKED,
                    object_type=AuditObject.TOKEN,
                    object_id=subject,
                    origin="rtic token revoke",
                    reason=args.reason,
                    detail={"jti": args.jti} if args.jti else {"sub": args.sub},
                )
            ]
        )
    finally:
        await records.close()


def cmd_token_revoke(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        asyncio.run(_revoke(args, now))
    except _db_errors() as exc:
        print(f"token revoke: {exc}", file=sys.stderr)
        return 1
    if args.jti:
        print(f"revoked token {args.jti}")
    else:
        print(f"revoked every token of {args.sub} issued up to {now:%Y-%m-%d %H:%M:%S} UTC")
    print("gateways refuse it from their next refresh of the revocation list (seconds)")
    return 0


def _add_token_revoke_command(token: Any) -> None:
    """``rtic token revoke (--jti ID | --sub NAME) --reason TEXT``."""
    commands = token.add_subparsers(dest="token_command", metavar="{revoke}")
    p = commands.add_parser("revoke", help="revoke one token, or every token of a subject")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--jti", help="the token's id (its 'jti' claim)")
    who.add_argument("--sub", help="a subject: every token issued to it until now")
    p.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    p.add_argument("--by", default=CLI_ACTOR, help="who revokes (the audit record's actor)")
    p.set_defaults(func=cmd_token_revoke)


def _add_records_commands(sub: Any) -> None:
    """``rtic db upgrade | downgrade | current | purge`` and ``rtic audit export``."""
    p = sub.add_parser("db", help="the records database: migrations and retention")
    db = p.add_subparsers(dest="db_command", required=True)
    p = db.add_parser("upgrade", help="apply the migrations (RTIC_DATABASE_URL)")
    p.add_argument("revision", nargs="?", default="head", help="default: the newest")
    p.set_defaults(func=cmd_db_migrate)
    p = db.add_parser("downgrade", help="undo migrations down to a revision")
    p.add_argument("revision", help="a revision id, or 'base' (drops every table)")
    p.set_defaults(func=cmd_db_migrate)
    p = db.add_parser("current", help="the revision the database is at")
    p.set_defaults(func=cmd_db_migrate)
    p = db.add_parser(
        "purge", help="delete records past their retention period (never the audit trail)"
    )
    p.add_argument(
        "--before",
        type=_utc_time,
        help="date or ISO time: delete what is older (default: each kind's retention setting)",
    )
    p.add_argument("--kind", action="append", choices=PURGE_KINDS, help="repeatable; default all")
    p.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    p.set_defaults(func=cmd_db_purge)

    p = sub.add_parser("audit", help="the audit trail")
    audit = p.add_subparsers(dest="audit_command", required=True)
    p = audit.add_parser("export", help="write audit records as CSV (header, every field)")
    p.add_argument("--since", type=_utc_time, required=True, help="date or ISO time (UTC)")
    p.add_argument("--until", type=_utc_time, help="date or ISO time: up to (not including)")
    p.add_argument("--out", default="-", help="file to write (default: standard output)")
    p.add_argument("--by", default=CLI_ACTOR, help="who exports (the audit record's actor)")
    p.add_argument("--reason", help="why (kept in the audit trail)")
    p.set_defaults(func=cmd_audit_export)


def cmd_data_outcomes(args: argparse.Namespace) -> int:
    from pathlib import Path

    from push.outcomes import build_extract

    meta = build_extract(Path(args.source), Path(args.out))
    print(f"outcomes of {', '.join(meta['forces'])} for {', '.join(meta['months'])} -> {args.out}")
    return 0


def _add_data_commands(sub: Any) -> None:
    """``rtic data outcomes``: the what-if extract from police open data."""
    from rtic.settings import PROJECT_ROOT

    p = sub.add_parser("data", help="build the data extracts shipped in data/")
    data = p.add_subparsers(dest="data_command", required=True)
    p = data.add_parser(
        "outcomes", help="crime outcomes per type from data.police.uk street-level files"
    )
    p.add_argument(
        "--source",
        required=True,
        help="folder of *-street.csv files (and recorded-crime-by-force-*.csv)",
    )
    p.add_argument("--out", default=str(PROJECT_ROOT / "data" / "outcomes"), help="folder")
    p.set_defaults(func=cmd_data_outcomes)


def run_bench(suite_args: list[str], script: str = "suite.py", name: str = "bench") -> int:
    """Run the benchmark suite (or the fault suite, ``script`` faults.py) of the source
    checkout this command is installed from (it measures, it tests nothing: see
    docs/benchmarks.md and docs/reliability.md)."""
    import subprocess
    from pathlib import Path

    suite = Path(__file__).resolve().parent.parent / "benchmarks" / script
    if not suite.is_file():
        print(f"{name}: needs a source checkout ({suite} not found)", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(suite), *suite_args])


def _add_bench_command(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="the benchmark suite: worker against its peers, latency, start-up, scale-out, memory",
        add_help=False,
    )
    # The arguments go to the suite as they are (``main`` hands them over before parsing).
    p.set_defaults(func=lambda args: run_bench([]))
    p = sub.add_parser(
        "faults",
        help="the fault suite (kills, outages, scale-out) or --soak: docs/reliability.md",
        add_help=False,
    )
    p.set_defaults(func=lambda args: run_bench([], "faults.py", "faults"))


def build_parser() -> argparse.ArgumentParser:
    """The ``rtic`` argument parser: one small function per group of subcommands."""
    parser = argparse.ArgumentParser(prog="rtic", description=__doc__.split("\n")[0])
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_commands(sub)
    _add_simulator_commands(sub)
    _add_admin_commands(sub)
    _add_reference_commands(sub)
    _add_rules_commands(sub)
    _add_records_commands(sub)
    _add_data_commands(sub)
    add_analytics_commands(sub)
    _add_bench_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["bench"]:
        return run_bench(given[1:])
    if given[:1] == ["faults"]:
        return run_bench(given[1:], "faults.py", "faults")
    args = build_parser().parse_args(argv)
    configure_logging(get_settings(), args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
