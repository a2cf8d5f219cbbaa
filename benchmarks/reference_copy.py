"""The worker's copy of hotlists and markers at its bound: memory, changes applied a
second, reads looked up a second (docs/reliability.md, "Redis away").

    .venv/bin/python -m benchmarks.reference_copy            # speed
    .venv/bin/python -m benchmarks.reference_copy --memory   # memory (tracemalloc: slower)
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from datetime import UTC, datetime

from enrichers.reference_copy import DEFAULT_MAX_ENTRIES, ReferenceCopy
from rtic.schemas import EventKind, PlateReadV1, ReferenceChangeV1

AT = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)


def _plate(i: int) -> str:
    letters = "".join(chr(65 + i // 100 // 26**k % 26) for k in range(3))
    return f"AB{i % 100:02d}{letters}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=DEFAULT_MAX_ENTRIES + 1_000)
    parser.add_argument("--memory", action="store_true", help="trace memory (slower)")
    args = parser.parse_args()
    changes = [
        ReferenceChangeV1.model_validate(
            {
                "kind": "hotlist",
                "op": "upsert",
                "id": f"HL-{i:07d}",
                "entry": {"vrm": _plate(i), "reason": "stolen", "source": "PNC"},
            }
        )
        for i in range(args.entries)
    ]
    reads = [
        PlateReadV1.model_validate(
            {
                "read_id": f"R-{i}",
                "vrm": _plate(i),
                "camera_id": "CAM-1",
                "read_at": AT.isoformat(),
                "lat": 52.48,
                "lon": -1.89,
            }
        )
        for i in range(20_000)
    ]
    if args.memory:
        tracemalloc.start()
    copy = ReferenceCopy()
    started = time.perf_counter()
    for i in range(0, len(changes), 5_000):
        copy.apply(changes[i : i + 5_000])
    applied_s = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[0] if args.memory else 0
    started = time.perf_counter()
    blocks = copy.history(EventKind.ANPR, reads)
    looked_s = time.perf_counter() - started
    hits = sum(1 for b in blocks if b and b["hotlist"])
    print(
        f"entries {len(copy):,}, refused {copy.refused:,}"
        + (f", memory {traced / 1e6:.0f} MB" if args.memory else "")
        + f", applied {len(changes) / applied_s:,.0f} changes/s"
        f", looked up {len(reads) / looked_s:,.0f} reads/s ({hits:,} hits)"
    )


if __name__ == "__main__":
    main()
