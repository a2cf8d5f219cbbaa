"""Redis key layout and the normalisations keys are built from. Pure.

All keys start with ``rtic:`` (or the deployment's topic prefix + ``rtic:``):

============================  ======  =====================================================
key                           type    holds
============================  ======  =====================================================
``rtic:hotlist:{plate}``      hash    entry id -> hotlist entry JSON, by *canonical* plate
``rtic:hotlist-index``        hash    entry id -> canonical plate (for deletes by id)
``rtic:marker:person:{id}``   hash    marker id -> marker entry JSON
``rtic:marker:address:{a}``   hash    marker id -> marker entry JSON, by normalised address
``rtic:marker-index``         hash    marker id -> the key it lives in (for deletes by id)
``rtic:calls:address:{a}``    zset    call id scored by received time (epoch s); expires
``rtic:calls:person:{id}``    zset    call id scored by received time (epoch s); expires
``rtic:ref:{kind}``           hash    id -> entry JSON for geofences and places
============================  ======  =====================================================

Call-history sets are trimmed to the history window on every write and
expire a window after their last write, so Redis memory stays bounded.
"""

from __future__ import annotations

import re

# Characters ANPR commonly confuses, mapped to one canonical character, so a
# misread (0/O, 1/I, 5/S, 8/B, 2/Z, 0/Q/D) still finds the hotlisted plate.
_CONFUSABLE = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "S": "5", "B": "8", "Z": "2"})
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_SPACES = re.compile(r"\s+")
_ADDRESS_NOISE = re.compile(r"[^A-Z0-9 ]")


def normalise_vrm(vrm: str) -> str:
    """The plate as registered: upper case, no spaces or punctuation."""
    return _NOT_ALNUM.sub("", vrm.upper())


def canonical_vrm(vrm: str) -> str:
    """The plate with confusable characters folded: equal for a plate and its usual misreads."""
    return normalise_vrm(vrm).translate(_CONFUSABLE)


def normalise_address(address: str) -> str:
    """An address key: upper case, punctuation dropped, spaces folded."""
    return _SPACES.sub(" ", _ADDRESS_NOISE.sub(" ", address.upper())).strip()


class Keys:
    """Key names for one deployment (optional prefix)."""

    def __init__(self, prefix: str = "") -> None:
        self.base = f"{prefix}rtic:"

    def hotlist(self, canonical_plate: str) -> str:
        return f"{self.base}hotlist:{canonical_plate}"

    @property
    def hotlist_index(self) -> str:
        return f"{self.base}hotlist-index"

    def person_markers(self, person_id: str) -> str:
        return f"{self.base}marker:person:{person_id}"

    def address_markers(self, address_key: str) -> str:
        return f"{self.base}marker:address:{address_key}"

    @property
    def marker_index(self) -> str:
        return f"{self.base}marker-index"

    def calls_at_address(self, address_key: str) -> str:
        return f"{self.base}calls:address:{address_key}"

    def calls_by_person(self, person_id: str) -> str:
        return f"{self.base}calls:person:{person_id}"

    def reference(self, kind: str) -> str:
        return f"{self.base}ref:{kind}"
