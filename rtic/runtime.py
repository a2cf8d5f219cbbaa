"""Process settings for the long-running worker (and the benchmarks that measure it)."""

from __future__ import annotations

import gc

# The youngest generation is collected every this many allocations instead of Python's
# 700: a worker allocates a few dicts per event, and with the default a collection of
# the young generation runs every few events, the older ones often enough to walk the
# whole heap (reference data, indexes) again and again.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Freeze what is loaded so far (reference data, indexes) out of the collector's way
    and collect less often. Call once, after loading, before the stream starts."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)
