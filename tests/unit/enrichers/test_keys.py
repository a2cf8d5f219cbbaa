from hypothesis import given
from hypothesis import strategies as st

from enrichers.keys import Keys, canonical_vrm, normalise_address, normalise_vrm


def test_plates_normalise_and_fold_misreads() -> None:
    assert normalise_vrm(" ab12 cde ") == "AB12CDE"
    assert canonical_vrm("AB10 SDE") == canonical_vrm("A810 5DE") == canonical_vrm("AB1O SDE")
    assert canonical_vrm("AB12CDE") != canonical_vrm("AB12CDF")


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -", max_size=10))
def test_canonical_is_idempotent_and_stable_under_usual_misreads(plate: str) -> None:
    canon = canonical_vrm(plate)
    assert canonical_vrm(canon) == canon
    swapped = plate.translate(str.maketrans("0O1I5S8B", "O0I1S5B8"))
    assert canonical_vrm(swapped) == canon


def test_addresses_normalise() -> None:
    assert normalise_address(" 12, Example  street. B7 4AA ") == "12 EXAMPLE STREET B7 4AA"


def test_key_layout_is_prefixed() -> None:
    k = Keys("t1.")
    assert k.hotlist == "t1.rtic:hotlist"
    assert k.calls_at_address("X") == "t1.rtic:calls:address:X"
    assert Keys().person_markers == "rtic:markers:person"
