"""Police open data: data.police.uk street-level crime files, one crime a row.

The format (``YYYY-MM-<force>-street.csv``): ``Crime ID, Month, Reported by, Falls
within, Longitude, Latitude, Location, LSOA code, LSOA name, Crime type, Last outcome
category, Context``. What it holds, and what it does not, matters to every model built
on it (docs/analytics.md):

- **Month, not day or hour.** ``Month`` is the month the crime was recorded in; there
  is no day or time, so nothing finer than a month can be learned from it.
- **Snapped locations.** Each crime is moved to the nearest of a fixed set of
  anonymous "map points" (the middle of a street, a public place) so that no victim's
  home can be found; several crimes on one street share one point. A point is always
  inside the crime's LSOA (2011), which is the finest area the data is faithful to.
- **Recorded crime only, as the police recorded it**, plus anti-social behaviour
  incidents (which have no ``Crime ID``). What was never reported, or was reported and
  not recorded, is not there.

``read_street_files`` reads files into ``StreetCrime`` rows, keeping every source
identifier whole; a row it cannot use (no month, no location, no LSOA) is skipped and
counted by reason, never guessed; a file that is not of this format is an
``OpenDataError`` naming the file and what is missing.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED_COLUMNS = ("Crime ID", "Month", "Longitude", "Latitude", "LSOA code", "Crime type")
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

# Crime types that have a victim who reports them (or a shop that does): what a patrol
# can prevent by being there, and what the police learn of mostly from the public.
VICTIM_BASED = frozenset(
    {
        "Burglary",
        "Robbery",
        "Theft from the person",
        "Vehicle crime",
        "Bicycle theft",
        "Other theft",
        "Shoplifting",
        "Criminal damage and arson",
        "Violence and sexual offences",
    }
)
# Left out of the default set, and why (docs/analytics.md): "Drugs" and "Possession of
# weapons" are found by police activity (stops, searches), so they map where officers
# were sent, not where harm happened; "Public order" is largely recorded by officers at
# the scene; "Other crime" is a mixed bag; "Anti-social behaviour" is not crime.
POLICE_GENERATED = frozenset({"Drugs", "Possession of weapons", "Public order"})

TYPE_SETS: dict[str, frozenset[str] | None] = {
    "victim": VICTIM_BASED,
    "burglary": frozenset({"Burglary"}),
    "violence": frozenset({"Violence and sexual offences", "Robbery"}),
    "all": None,  # every row, anti-social behaviour and police-generated types included
}


class OpenDataError(ValueError):
    """A file that is not a police open-data street-level file, or unusable input."""


@dataclass(frozen=True, slots=True)
class StreetCrime:
    """One row: the crime's own id (empty for anti-social behaviour), its month, its
    snapped point and its LSOA."""

    crime_id: str
    month: str
    lon: float
    lat: float
    lsoa_code: str
    lsoa_name: str
    crime_type: str


@dataclass
class StreetData:
    """What was read: the usable rows, and the rows skipped by reason."""

    crimes: list[StreetCrime] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)

    @property
    def months(self) -> list[str]:
        return sorted({c.month for c in self.crimes})

    def of_types(self, types: frozenset[str] | None) -> list[StreetCrime]:
        """The rows of these crime types (``None``: every row)."""
        if types is None:
            return list(self.crimes)
        return [c for c in self.crimes if c.crime_type in types]


def type_set(name: str) -> frozenset[str] | None:
    """A named set of crime types (``victim``, ``burglary``, ``violence``, ``all``)."""
    try:
        return TYPE_SETS[name]
    except KeyError:
        raise OpenDataError(
            f"unknown crime type set {name!r} (one of: {', '.join(TYPE_SETS)})"
        ) from None


def _coordinate(text: str, low: float, high: float) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


def parse_rows(rows: Iterable[dict[str, str]], into: StreetData) -> None:
    """Rows of a street-level file (as ``csv.DictReader`` gives them) into ``into``."""
    for row in rows:
        month = (row.get("Month") or "").strip()
        if not MONTH.match(month):
            into.skipped["no month"] += 1
            continue
        # Longitude and latitude of the United Kingdom with a margin: anything else is
        # not a place in this data.
        lon = _coordinate((row.get("Longitude") or "").strip(), -9.0, 3.0)
        lat = _coordinate((row.get("Latitude") or "").strip(), 49.0, 61.0)
        if lon is None or lat is None:
            into.skipped["no location"] += 1
            continue
        lsoa = (row.get("LSOA code") or "").strip()
        if not lsoa:
            into.skipped["no LSOA"] += 1
            continue
        crime_type = (row.get("Crime type") or "").strip()
        if not crime_type:
            into.skipped["no crime type"] += 1
            continue
        into.crimes.append(
            StreetCrime(
                crime_id=(row.get("Crime ID") or "").strip(),
                month=month,
                lon=lon,
                lat=lat,
                lsoa_code=lsoa,
                lsoa_name=(row.get("LSOA name") or "").strip(),
                crime_type=crime_type,
            )
        )


def read_street_file(path: Path, into: StreetData | None = None) -> StreetData:
    """One street-level file; ``OpenDataError`` if it cannot be read or lacks a column."""
    data = into if into is not None else StreetData()
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise OpenDataError(
                    f"{path}: not a police street-level file (missing {', '.join(missing)})"
                )
            parse_rows(reader, data)
    except OSError as exc:
        raise OpenDataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise OpenDataError(f"{path}: not a readable CSV file ({exc})") from exc
    data.files.append(str(path))
    return data


def read_street_files(paths: Sequence[Path]) -> StreetData:
    """Every file into one ``StreetData``; a crime id met twice is kept once (the same
    month downloaded twice must not count double)."""
    if not paths:
        raise OpenDataError("no files given")
    data = StreetData()
    for path in paths:
        read_street_file(path, data)
    seen: set[str] = set()
    kept: list[StreetCrime] = []
    for crime in data.crimes:
        if crime.crime_id:
            if crime.crime_id in seen:
                data.skipped["repeated crime id"] += 1
                continue
            seen.add(crime.crime_id)
        kept.append(crime)
    data.crimes = kept
    return data


def month_index(month: str) -> int:
    """Months since year 0 (``2017-07`` -> 24210): month arithmetic."""
    found = MONTH.match(month)
    if not found:
        raise OpenDataError(f"not a month (YYYY-MM): {month!r}")
    return int(found.group(1)) * 12 + int(found.group(2)) - 1


def month_name(index: int) -> str:
    year, month = divmod(index, 12)
    return f"{year:04d}-{month + 1:02d}"
