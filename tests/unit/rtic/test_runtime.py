"""The worker's garbage-collector settings."""

from __future__ import annotations

import gc

from rtic.runtime import GC_YOUNG_THRESHOLD, tune_gc


def test_tune_gc_freezes_what_is_loaded_and_collects_less_often() -> None:
    before = gc.get_threshold()
    try:
        loaded = [{"reference": i} for i in range(1000)]
        tune_gc()
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.get_freeze_count() >= len(loaded)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
