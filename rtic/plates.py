"""Vehicle registration marks (plates) as the engine compares them. Pure.

Two forms, used wherever a plate is a key (hotlists, snoozes, trails, incident
vehicles, who may see a plate's alerts):

- ``normalise_vrm``: the plate as registered: upper case, no spaces or punctuation;
- ``canonical_vrm``: that, with the characters ANPR commonly confuses folded to one
  (0/O/Q/D, 1/I, 5/S, 8/B, 2/Z), so a misread still finds the hotlisted plate.
"""

from __future__ import annotations

import re

# Characters ANPR commonly confuses, mapped to one canonical character, so a
# misread (0/O, 1/I, 5/S, 8/B, 2/Z, 0/Q/D) still finds the hotlisted plate.
_CONFUSABLE = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "S": "5", "B": "8", "Z": "2"})
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def normalise_vrm(vrm: str) -> str:
    """The plate as registered: upper case, no spaces or punctuation."""
    return _NOT_ALNUM.sub("", vrm.upper())


def canonical_vrm(vrm: str) -> str:
    """The plate with confusable characters folded: equal for a plate and its usual misreads."""
    return normalise_vrm(vrm).translate(_CONFUSABLE)


def fold_misreads(normalised_vrm: str) -> str:
    """``canonical_vrm`` for a plate already normalised (saves the second normalisation)."""
    return normalised_vrm.translate(_CONFUSABLE)
