"""Plate normalisation: the registered form and the form with misreads folded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rtic.plates import canonical_vrm, fold_misreads, normalise_vrm

PLATE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# The usual ANPR confusions, both ways round (plates.py folds each pair to one character).
MISREADS = {
    "0": "OQD",
    "O": "0QD",
    "Q": "0OD",
    "D": "0OQ",
    "1": "I",
    "I": "1",
    "5": "S",
    "S": "5",
    "8": "B",
    "B": "8",
    "2": "Z",
    "Z": "2",
}


def test_plates_normalise_and_fold_misreads() -> None:
    assert normalise_vrm(" ab12 cde ") == "AB12CDE"
    assert canonical_vrm("AB10 SDE") == canonical_vrm("A810 5DE") == canonical_vrm("AB1O SDE")
    assert canonical_vrm("AB12CDE") != canonical_vrm("AB12CDF")


def test_usual_plate_formats_normalise() -> None:
    assert normalise_vrm("ab-12.cde") == "AB12CDE"
    assert normalise_vrm("") == canonical_vrm("") == ""
    assert canonical_vrm("OIS BZQD") == "0158200" == canonical_vrm("0158200")


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -", max_size=10))
def test_canonical_is_idempotent_and_stable_under_usual_misreads(plate: str) -> None:
    canon = canonical_vrm(plate)
    assert canonical_vrm(canon) == canon
    swapped = plate.translate(str.maketrans("0O1I5S8B", "O0I1S5B8"))
    assert canonical_vrm(swapped) == canon


@given(
    st.text(alphabet=PLATE_CHARS, min_size=1, max_size=8).flatmap(
        lambda plate: st.tuples(
            st.just(plate),
            st.tuples(
                *(st.sampled_from(c + MISREADS[c]) if c in MISREADS else st.just(c) for c in plate)
            ).map("".join),
        )
    )
)
def test_any_mix_of_misread_characters_finds_the_same_plate(pair: tuple[str, str]) -> None:
    plate, misread = pair
    assert canonical_vrm(misread) == canonical_vrm(plate)


@given(st.text(max_size=20))
def test_canonical_is_idempotent_on_any_text_and_only_plate_characters(text: str) -> None:
    canon = canonical_vrm(text)
    assert canonical_vrm(canon) == canon
    assert set(canon) <= set(PLATE_CHARS) - set("OQDISBZ")
    assert fold_misreads(normalise_vrm(text)) == canon
    assert normalise_vrm(normalise_vrm(text)) == normalise_vrm(text)


@given(st.text(alphabet=PLATE_CHARS, min_size=1, max_size=8))
def test_a_plate_differing_in_a_non_confusable_character_is_another_plate(plate: str) -> None:
    other = plate[:-1] + ("X" if plate[-1] != "X" else "Y")
    assert canonical_vrm(other) != canonical_vrm(plate)
