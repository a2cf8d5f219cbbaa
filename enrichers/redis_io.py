"""How the Redis stores talk to Redis: one round trip at a time, with a deadline, and
errors mapped to the project's tree.

If Redis does not answer within the timeout a call raises ``ServiceError`` (worth
retrying); if it answers with an error, ``EnrichmentError`` (not worth retrying).

Scripts run by EVALSHA. A lone script call is a registered ``AsyncScript`` (redis-py
loads the source and retries when the server does not know it). In a pipeline,
redis-py would first ask the server whether it knows each script (``SCRIPT EXISTS``),
a second round trip on every batch; here the pipeline sends EVALSHA straight away and,
only when the server answers ``NOSCRIPT`` (a new or restarted Redis), loads the
scripts and sends the pipeline again. The pipelines that do this hold only script
calls and writes that are safe to repeat (a field set to the same value, a change
counter moved once more).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError

from rtic.errors import EnrichmentError, ServiceError


def connect(url: str, timeout: float) -> aioredis.Redis:
    """A client for the stores: every command bounded by ``timeout`` seconds."""
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=0
    )


def _mapped(exc: Exception) -> Exception:
    if isinstance(exc, ResponseError):
        # Redis answered, but refused: retrying will not help.
        return EnrichmentError(f"redis refused: {exc}")
    return ServiceError(f"redis: {type(exc).__name__}: {exc}".strip(": "))


async def call_script(
    script: AsyncScript, keys: Sequence[Any], args: Sequence[Any], limit_s: float
) -> Any:
    """One script call, one round trip (three the first time a server sees the script)."""
    try:
        async with asyncio.timeout(limit_s):
            return await script(keys=keys, args=args)
    except (RedisError, OSError, TimeoutError) as exc:
        raise _mapped(exc) from exc


def queue_script(pipe: Any, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Add a script call to a pipeline, by EVALSHA (see ``run_pipeline``)."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)


async def run_pipeline(
    client: aioredis.Redis,
    fill: Callable[[Any], None],
    limit_s: float,
    *,
    scripts: Sequence[AsyncScript] = (),
    transaction: bool = False,
) -> list[Any]:
    """Send the commands ``fill`` adds to a pipeline in one round trip; their replies.

    If the server does not know one of ``scripts`` yet, they are loaded and the
    pipeline is sent again (``fill`` is called again).
    """
    try:
        async with asyncio.timeout(limit_s):
            for attempt in (1, 2):
                pipe = client.pipeline(transaction=transaction)
                fill(pipe)
                try:
                    result: list[Any] = await pipe.execute()
                    return result
                except NoScriptError:
                    if attempt == 2 or not scripts:
                        raise
                    for script in scripts:
                        script.sha = await client.script_load(script.script)
    except (RedisError, OSError, TimeoutError) as exc:
        raise _mapped(exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover
