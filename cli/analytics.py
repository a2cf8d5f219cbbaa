"""``rtic analytics``: patrol priorities from police open data, and their evaluation.

rtic analytics hotspots --history FILE [FILE ...] --out FILE.csv
    fits on data.police.uk street-level files and writes every LSOA seen with its score
    (the expected count of the crime types modelled in the month after the history),
    highest first: ``lsoa_code,score``.
rtic analytics evaluate --history FILE [FILE ...] --test FILE [FILE ...]
    fits on the history, scores each test month (a rolling origin: each test month is
    then added to the history), and prints hit rate and Predictive Accuracy Index at
    1, 5 and 10 % of units against naive baselines; ``--doc docs/analytics.md --label X``
    writes the table between that label's markers.

docs/analytics.md says what the model is, what the data can and cannot tell it, and
the risks.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from analytics.opendata import TYPE_SETS, OpenDataError


def cmd_hotspots(args: argparse.Namespace) -> int:
    from analytics.hotspots import fit_open_data
    from analytics.opendata import read_street_files, type_set

    try:
        data = read_street_files([Path(p) for p in args.history])
        model = fit_open_data(
            data,
            types=type_set(args.types),
            unit="lsoa",
            kappa=args.kappa,
            bandwidth_m=args.bandwidth_m,
        )
        ranked = model.ranked(args.horizon)
        out = Path(args.out)
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["lsoa_code", "score"])
            writer.writerows((code, f"{score:.6f}") for code, score in ranked)
    except OpenDataError as exc:
        print(f"analytics hotspots: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"analytics hotspots: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(data.skipped.items())) or "none"
    print(
        f"fitted on {', '.join(model.months)}: {int(model.counts.sum()):,} crimes "
        f"({args.types}) in {len(model.units.codes):,} LSOAs; rows skipped: {skipped}"
    )
    print("model: " + ", ".join(f"{k} {v}" for k, v in model.fit.summary().items()))
    print(f"{len(ranked):,} LSOAs -> {args.out}; the first five:")
    for code, score in ranked[:5]:
        print(f"  {code}  {score:.2f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from analytics.evaluate import command_line, markdown, rolling, write_section
    from analytics.opendata import read_street_files, type_set

    try:
        history = read_street_files([Path(p) for p in args.history])
        tests = [read_street_files([Path(p)]) for p in args.test]
        evaluations = rolling(
            history,
            tests,
            types=type_set(args.types),
            types_name=args.types,
            unit=args.unit,
            cell_m=args.cell_m,
        )
        block = markdown(evaluations, command_line(_reproducible(args)), args.title)
        if args.doc:
            write_section(Path(args.doc), args.label, block)
    except OpenDataError as exc:
        print(f"analytics evaluate: {exc}", file=sys.stderr)
        return 2
    print(block)
    return 0


def _reproducible(args: argparse.Namespace) -> list[str]:
    """The arguments that give the same table (``--doc`` and ``--label`` left out)."""
    out = ["--history", *args.history, "--test", *args.test, "--types", args.types]
    out += ["--unit", args.unit]
    if args.unit == "cell":
        out += ["--cell-m", f"{args.cell_m:g}"]
    return [*out, "--title", args.title]


def add_analytics_commands(sub: Any) -> None:
    """``rtic analytics hotspots`` and ``rtic analytics evaluate``."""
    p = sub.add_parser("analytics", help="patrol priorities from police open data")
    commands = p.add_subparsers(dest="analytics_command", required=True)
    types_help = f"crime types modelled: {', '.join(TYPE_SETS)} (default victim)"

    p = commands.add_parser(
        "hotspots", help="score every LSOA seen for the month after the history"
    )
    p.add_argument("--history", nargs="+", required=True, help="street-level CSV files")
    p.add_argument("--out", required=True, help="the CSV to write (lsoa_code,score)")
    p.add_argument("--types", default="victim", choices=sorted(TYPE_SETS), help=types_help)
    p.add_argument("--horizon", type=int, default=1, help="months ahead (default 1)")
    p.add_argument("--kappa", type=float, help="prior strength (default: chosen by thinning)")
    p.add_argument("--bandwidth-m", type=float, help="neighbour bandwidth in metres")
    p.set_defaults(func=cmd_hotspots)

    p = commands.add_parser(
        "evaluate", help="hit rate and PAI on later months, against naive baselines"
    )
    p.add_argument("--history", nargs="+", required=True, help="street-level files to fit on")
    p.add_argument("--test", nargs="+", required=True, help="later months, one file each")
    p.add_argument("--types", default="victim", choices=sorted(TYPE_SETS), help=types_help)
    p.add_argument("--unit", default="lsoa", choices=("lsoa", "cell"), help="LSOAs or cells")
    p.add_argument("--cell-m", type=float, default=200.0, help="cell side in metres")
    p.add_argument("--title", default="Evaluation", help="the table's title")
    p.add_argument("--doc", help="a Markdown file to write the table into")
    p.add_argument("--label", default="default", help="the markers' label in --doc")
    p.set_defaults(func=cmd_evaluate)
