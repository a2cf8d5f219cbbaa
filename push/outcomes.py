"""What happens next: the outcomes of reported crime, from real police open data.

The portal's "what happens next" section shows, per kind of crime, how crimes of
that kind ended: the shares of the "Last outcome category" of every crime in the
police open-data street-level files the repository ships an extract of
(``data/outcomes/``, built by ``rtic data outcomes`` from data.police.uk files;
docs/outcomes.md says what is in it and what the figures do not mean).

The extract (``street-outcomes.csv``: ``month, force, crime_type, outcome, count``)
counts crimes by month, force, crime type and last outcome; anti-social behaviour
is left out (it is not a crime and has no outcome), and a crime with no outcome
category is counted as ``(none)``. ``recorded-crime.csv`` (``force, category,
offences``) gives the number of offences each force recorded in a financial year
per police.uk category, for scale. ``source.json`` names the source, period,
forces and licence.

``GET /api/portal/outcomes`` (public): the crime types with their counts, the
period, forces and source; ``?category=<slug>`` adds that type's outcomes (count and
share of each, largest first), the same grouped into what they mean for a victim,
and the caveats. Shares are of the crimes of that type with an outcome category,
rounded to 0.1 %.
"""

from __future__ import annotations

import csv
import functools
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

OUTCOMES_DIR = "outcomes"
STREET_FILE = "street-outcomes.csv"
RECORDED_FILE = "recorded-crime.csv"
SOURCE_FILE = "source.json"
STREET_FIELDS = ("month", "force", "crime_type", "outcome", "count")
RECORDED_FIELDS = ("force", "category", "offences")
NO_OUTCOME = "(none)"  # a crime whose last outcome category is empty
LEFT_OUT = frozenset({"Anti-social behaviour"})  # not a crime: no outcome is recorded
RECORDED_FORCES = ("West Yorkshire", "West Midlands")  # the data's force and ours

# What each outcome means for the person who reported it, in five plain groups.
GROUPS: dict[str, str] = {
    "no_suspect": "Investigation finished without finding a suspect",
    "not_prosecuted": "A suspect was found but not charged",
    "out_of_court": "Dealt with without going to court",
    "court": "Went to court",
    "not_known": "Still open, or the result is not recorded",
}
OUTCOME_GROUP: dict[str, str] = {
    "Investigation complete; no suspect identified": "no_suspect",
    "Unable to prosecute suspect": "not_prosecuted",
    "Further investigation is not in the public interest": "not_prosecuted",
    "Formal action is not in the public interest": "not_prosecuted",
    "Action to be taken by another organisation": "not_prosecuted",
    "Local resolution": "out_of_court",
    "Offender given a caution": "out_of_court",
    "Offender given penalty notice": "out_of_court",
    "Offender given a drugs possession warning": "out_of_court",
    "Offender sent to prison": "court",
    "Offender given suspended prison sentence": "court",
    "Offender given community sentence": "court",
    "Offender fined": "court",
    "Offender given conditional discharge": "court",
    "Offender given absolute discharge": "court",
    "Offender ordered to pay compensation": "court",
    "Offender deprived of property": "court",
    "Offender otherwise dealt with": "court",
    "Defendant found not guilty": "court",
    "Defendant sent to Crown Court": "court",
    "Court result unavailable": "court",
    "Court case unable to proceed": "court",
    "Awaiting court outcome": "court",
    "Suspect charged as part of another case": "court",
    "Status update unavailable": "not_known",
    "Under investigation": "not_known",
    NO_OUTCOME: "not_known",
}

CAVEATS = (
    "These are past crimes of one police force in two months, not a forecast for your case.",
    "Each crime is counted by the last outcome recorded when the data was published; "
    "some were still open then, and a case can be reopened if new evidence is found.",
    "'No suspect identified' does not mean nothing was done: it means the investigation "
    "found nobody to charge with what was known at the time.",
    "Crimes that were never reported are not in the figures, and one crime type covers "
    "very different events (a 'Vehicle crime' may be a stolen car or a broken mirror).",
    "Anti-social behaviour is not included: it is not a crime and has no outcome.",
)


def slug(crime_type: str) -> str:
    """The URL form of a crime type: ``Vehicle crime`` -> ``vehicle-crime``."""
    return re.sub(r"[^a-z0-9]+", "-", crime_type.lower()).strip("-")


# ---- building the extract (``rtic data outcomes``) ------------------------------------------


def _police_uk_rows(source: Path) -> Iterator[dict[str, str]]:
    """Every row of every street-level file (``*-street.csv``) under ``source``, in name order."""
    for path in sorted(source.glob("*-street.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            yield from csv.DictReader(f)


def count_street_outcomes(rows: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
    """Crimes counted by month, force (``Reported by``), crime type and last outcome,
    sorted; anti-social behaviour left out."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for row in rows:
        crime_type = row["Crime type"].strip()
        if crime_type in LEFT_OUT:
            continue
        outcome = row["Last outcome category"].strip() or NO_OUTCOME
        counts[(row["Month"].strip(), row["Reported by"].strip(), crime_type, outcome)] += 1
    return [dict(zip(STREET_FIELDS, (*key, n), strict=True)) for key, n in sorted(counts.items())]


def count_recorded_crime(path: Path, forces: Iterable[str]) -> list[dict[str, Any]]:
    """Offences recorded in the file's year per force (of ``forces``) and police.uk
    category (summed over quarters and offences), with the year."""
    wanted = set(forces)
    counts: Counter[tuple[str, str]] = Counter()
    years: set[str] = set()
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["Force_Name"] in wanted:
                counts[(row["Force_Name"], row["Policeuk_Cat"])] += int(row["Number_of_Offences"])
                years.add(row["Financial_Year"])
    return [
        {"force": force, "category": cat, "offences": n, "year": "/".join(sorted(years))}
        for (force, cat), n in sorted(counts.items())
    ]


def build_extract(source: Path, out: Path) -> dict[str, Any]:
    """Write ``data/outcomes/`` from the police open-data files in ``source``: the street
    files' outcome counts, the recorded-crime totals, and ``source.json``. Returns the
    source description written."""
    street = count_street_outcomes(_police_uk_rows(source))
    if not street:
        raise ValueError(f"no street-level crime files (*-street.csv) in {source}")
    recorded_files = sorted(source.glob("recorded-crime-by-force-*.csv"))
    recorded = count_recorded_crime(recorded_files[-1], RECORDED_FORCES) if recorded_files else []
    out.mkdir(parents=True, exist_ok=True)
    with (out / STREET_FILE).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, STREET_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(street)
    with (out / RECORDED_FILE).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, RECORDED_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: r[k] for k in RECORDED_FIELDS} for r in recorded)
    meta = {
        "months": sorted({r["month"] for r in street}),
        "forces": sorted({r["force"] for r in street}),
        "recorded_year": recorded[0]["year"] if recorded else None,
        "source": "data.police.uk street-level crime and outcomes; Home Office police "
        "recorded crime by force (as shipped in the crime-sim-toolkit 1.5.0 package)",
        "licence": "Open Government Licence v3.0",
        "attribution": "Contains public sector information licensed under the Open "
        "Government Licence v3.0.",
        "built_from": sorted(p.name for p in source.glob("*.csv")),
    }
    (out / SOURCE_FILE).write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    return meta


# ---- reading the shipped extract --------------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """The shipped extract, read once: counts per crime type and outcome."""

    counts: dict[str, Counter[str]]  # crime type -> outcome -> crimes
    by_month: dict[str, Counter[str]]  # crime type -> month -> crimes
    recorded: dict[str, dict[str, int]]  # police.uk category (lower case) -> force -> offences
    meta: dict[str, Any]

    @classmethod
    def load(cls, data_dir: Path) -> Outcomes:
        folder = data_dir / OUTCOMES_DIR
        counts: dict[str, Counter[str]] = {}
        by_month: dict[str, Counter[str]] = {}
        with (folder / STREET_FILE).open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                n = int(row["count"])
                counts.setdefault(row["crime_type"], Counter())[row["outcome"]] += n
                by_month.setdefault(row["crime_type"], Counter())[row["month"]] += n
        recorded: dict[str, dict[str, int]] = {}
        with (folder / RECORDED_FILE).open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                recorded.setdefault(row["category"].lower(), {})[row["force"]] = int(
                    row["offences"]
                )
        meta = orjson.loads((folder / SOURCE_FILE).read_bytes())
        return cls(counts, by_month, recorded, meta)

    def period(self) -> str:
        """The months the figures cover, in words: ``July 2016 and July 2017``."""
        import calendar

        words = [f"{calendar.month_name[int(m[5:7])]} {m[:4]}" for m in self.meta.get("months", [])]
        return " and ".join(words) if len(words) < 3 else ", ".join(words)

    def about(self) -> dict[str, Any]:
        """Where the figures come from (every answer carries it)."""
        return {
            "period": self.period(),
            "months": self.meta.get("months", []),
            "forces": self.meta.get("forces", []),
            "source": self.meta.get("source"),
            "licence": self.meta.get("licence"),
            "attribution": self.meta.get("attribution"),
            "caveats": list(CAVEATS),
        }

    def categories(self) -> list[dict[str, Any]]:
        """Every crime type with its crimes, most first."""
        found = [
            {"category": slug(t), "label": t, "crimes": sum(c.values())}
            for t, c in self.counts.items()
        ]
        return sorted(found, key=lambda c: (-c["crimes"], c["label"]))

    def crime_type(self, category: str) -> str | None:
        """The crime type a slug (or the type's own name) names, or None."""
        wanted = slug(category)
        return next((t for t in self.counts if slug(t) == wanted), None)

    def detail(self, crime_type: str) -> dict[str, Any]:
        """One crime type's outcomes: counts and shares, largest first, and grouped."""
        counts = self.counts[crime_type]
        known = {o: n for o, n in counts.items() if o != NO_OUTCOME}
        total = sum(known.values())
        outcomes = [
            {
                "outcome": o,
                "group": OUTCOME_GROUP.get(o, "not_known"),
                "count": n,
                "share": share(n, total),
            }
            for o, n in sorted(known.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        grouped: Counter[str] = Counter()
        for o, n in known.items():
            grouped[OUTCOME_GROUP.get(o, "not_known")] += n
        groups = [
            {"group": g, "label": label, "count": grouped[g], "share": share(grouped[g], total)}
            for g, label in GROUPS.items()
        ]
        recorded = self.recorded.get(crime_type.lower(), {})
        return {
            "category": slug(crime_type),
            "label": crime_type,
            "crimes": sum(counts.values()),
            "with_outcome": total,
            "without_outcome": counts.get(NO_OUTCOME, 0),
            "by_month": dict(sorted(self.by_month[crime_type].items())),
            "outcomes": outcomes,
            "groups": groups,
            "recorded": {
                "year": self.meta.get("recorded_year"),
                "offences_by_force": dict(sorted(recorded.items())),
            }
            if recorded
            else None,
        }


def share(count: int, total: int) -> float:
    """``count`` as a percentage of ``total``, to 0.1 (0 when there is nothing)."""
    return round(100.0 * count / total, 1) if total else 0.0


@functools.lru_cache(maxsize=4)
def outcomes_for(data_dir: Path) -> Outcomes:
    """The extract under ``data_dir``, read once per process."""
    return Outcomes.load(data_dir)


# ---- the HTTP answer ---------------------------------------------------------------------------


def answer(data_dir: Path, category: str | None) -> tuple[int, dict[str, Any]]:
    """``GET /api/portal/outcomes``'s status and body: the types (and, with a category,
    its outcomes); 404 for a category the data does not have; 503 without the extract."""
    try:
        outcomes = outcomes_for(data_dir)
    except (OSError, ValueError, KeyError) as exc:
        return 503, {
            "error": {"code": "unavailable", "message": f"the outcome figures are missing: {exc}"}
        }
    body: dict[str, Any] = {**outcomes.about(), "categories": outcomes.categories()}
    if category:
        crime_type = outcomes.crime_type(category)
        if crime_type is None:
            known = ", ".join(c["category"] for c in body["categories"])
            return 404, {
                "error": {
                    "code": "not_found",
                    "message": f"no figures for {category[:60]!r}; one of {known}",
                }
            }
        body["outcome"] = outcomes.detail(crime_type)
    return 200, body
