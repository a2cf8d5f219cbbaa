"""Address normalisation and the Redis key layout."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from enrichers.keys import Keys, normalise_address


def test_addresses_normalise() -> None:
    assert normalise_address(" 12, Example  street. B7 4AA ") == "12 EXAMPLE STREET B7 4AA"


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_address_keys_are_idempotent_and_ignore_case_and_punctuation(address: str) -> None:
    # ASCII only: some Unicode letters do not survive lower() then upper() unchanged.
    key = normalise_address(address)
    assert normalise_address(key) == key
    assert normalise_address(address.lower()) == normalise_address(address.upper())
    assert key == key.strip() and "  " not in key


def test_key_layout_is_prefixed() -> None:
    k = Keys("t1.")
    assert k.hotlist == "t1.rtic:hotlist"
    assert k.call_log == "t1.rtic:call-log"
    assert Keys().person_markers == "rtic:markers:person"


def test_every_key_is_under_the_deployment_prefix_and_distinct() -> None:
    k = Keys("dep.")
    names = [
        k.hotlist,
        k.hotlist_index,
        k.person_markers,
        k.address_markers,
        k.marker_index,
        k.call_log,
        k.trail("AB12CDE"),
        k.incident_log,
        k.officer_state,
        k.reference("geofence"),
        k.reference_version("geofence"),
    ]
    assert all(n.startswith("dep.rtic:") for n in names)
    assert len(set(names)) == len(names)
    assert k.incident_log == "dep.rtic:incident-log"
