"""The ``rtic`` command: one entry point, a subcommand per part of the system.

rtic up          everything on one machine (embedded default)
rtic worker      the Faust stream worker
rtic gateway     the websockets push gateway and dashboards
rtic simulate    a demand simulator feeding the input topics
rtic token       print a bearer token for the gateway
rtic topics      create the contract's topics
rtic replay      send recorded events; rtic record captures them
rtic reference   load reference data (hotlists, markers, places...)
rtic rules       check, test and list rules

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
    from rtic.tokens import TokenKeys, issue_token

    settings = get_settings()
    if settings.token_secret.get_secret_value() == DEV_TOKEN_SECRET:
        print("note: signed with the development secret (set RTIC_TOKEN_SECRET)", file=sys.stderr)
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
    worker.execute_from_commandline()
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    from push.gateway import run_gateway

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
    """The long-running parts: up, worker, gateway."""
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
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--sub", required=True, help="subject: user or officer id")
    p.add_argument("--case", action="append", help="case reference in scope (repeatable)")
    p.add_argument("--area", action="append", help="area code looked after (repeatable)")
    p.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("topics", help="create the contract's topics if missing")
    p.set_defaults(func=cmd_topics)


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(get_settings(), args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
