"""The small real extracts of police open data shipped for the tests (tests/data/crimes/,
README.md there says what they are)."""

from __future__ import annotations

from pathlib import Path

CRIMES = Path(__file__).resolve().parents[2] / "data" / "crimes"
WY_2016 = CRIMES / "2016-07-west-yorkshire-street-calderdale-001-004.csv"
WY_2017 = CRIMES / "2017-07-west-yorkshire-street-calderdale-001-004.csv"
HANTS = [CRIMES / f"2017-0{m}-hampshire-street-winchester-010-019.csv" for m in (3, 4, 5, 6)]

HEADER = (
    "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,"
    "LSOA name,Crime type,Last outcome category,Context\n"
)
