"""Part ``fanout``: thousands of websocket clients on one gateway, 1 % of them stalled.

Runs ``benchmarks/fanout.py`` (its own Tansu, ``rtic gateway`` as a process, the
clients in four processes of their own) and takes its figures: delivery latency
percentiles of the clients that keep reading, with every client reading and then with
1 % stalled; memory per client; exact delivery for a sample of clients checked against
``push.access``; what became of the stalled. The script's docstring says how.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from benchmarks.harness import ROOT, Services


async def run(
    services: Services,
    log_dir: Path,
    *,
    clients: int,
    seconds: float,
    rate: float,
    timeout: float = 900,
) -> dict[str, Any]:
    out = log_dir / "fanout.json"
    log_path = log_dir / "fanout.log"
    args = [
        "benchmarks/fanout.py",
        "--clients",
        str(clients),
        "--seconds",
        f"{seconds:g}",
        "--rate",
        f"{rate:g}",
        "--json",
        str(out),
    ]
    env = {"RTIC_REDIS_URL": services.redis_url}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=ROOT,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **env},
        )
        try:
            code = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            code = None
    if code != 0 or not out.exists():
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"benchmarks/fanout.py exited {code}:\n{tail}")
    figures: dict[str, Any] = orjson.loads(out.read_bytes())
    figures["command"] = "python " + " ".join(args[:-2])
    for line in figures.get("summary", []):
        print(f"  {line}", flush=True)
    return figures
