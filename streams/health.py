"""The worker's HTTP endpoint: ``/metrics`` (Prometheus) and ``/healthz``.

A small Starlette application served by uvicorn on the Faust worker's own
event loop, registered with Faust as the worker's web server
(``app.web_server``, Faust's replacement for its legacy aiohttp pages), so
it starts and stops with the worker. Faust's built-in pages (which would show
table contents) are not mounted.

``/healthz`` answers 200 while the consumer runs, 503 otherwise, with::

    {"status": "ok" | "degraded" | "down", "consumer": "running",
     "assigned_partitions": 6, "rebalancing": false, "redis": true}

``degraded``: the consumer runs but Redis does not answer; the pipeline goes on
with partial enrichment, so the worker is alive and should not be restarted.

The listening socket is bound before uvicorn starts: if the port is taken,
the worker logs it and goes on without the endpoint rather than stopping the
stream processing (uvicorn would exit the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import uvicorn
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerHealth:
    """A snapshot of the worker's state for ``/healthz``."""

    consumer: str  # the consumer service's state: init, running, stopping, crashed...
    assigned_partitions: int
    rebalancing: bool
    redis: bool

    @property
    def status(self) -> str:
        if self.consumer != "running":
            return "down"
        return "ok" if self.redis else "degraded"

    @property
    def http_status(self) -> int:
        return 200 if self.consumer == "running" else 503

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, **asdict(self)}


def worker_web_app(
    registry: CollectorRegistry, health: Callable[[], Awaitable[WorkerHealth]]
) -> Starlette:
    """The ASGI application: ``/metrics`` from ``registry``, ``/healthz`` from ``health()``."""

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        state = await health()
        return JSONResponse(state.as_json(), status_code=state.http_status)

    return Starlette(
        routes=[Route("/metrics", metrics), Route("/healthz", healthz)],
    )


class WorkerWebServer(Service):
    """Serves an ASGI application with uvicorn on the worker's loop, started by Faust."""

    def __init__(self, asgi_app: Any, host: str, port: int, **kwargs: Any) -> None:
        self.asgi_app = asgi_app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Future[Any] | None = None
        super().__init__(**kwargs)

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def on_start(self) -> None:
        try:
            sock = socket.create_server((self.host, self.port))
        except OSError as exc:
            log.error(
                "worker /metrics and /healthz not served: cannot listen on %s:%d (%s); "
                "set RTIC_WORKER_WEB_PORT",
                self.host,
                self.port,
                exc,
            )
            return
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.asgi_app, loop="none", lifespan="off", log_config=None, access_log=False
        )
        server = uvicorn.Server(config)
        # The Faust worker owns the process' signals; uvicorn must not take them.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]
        self._server = server
        self._serving = self.add_future(server.serve(sockets=[sock]))
        log.info("worker /metrics and /healthz at %s", self.web_url)

    async def on_stop(self) -> None:
        server, serving = self._server, self._serving
        self._server = self._serving = None
        if server is not None:
            server.should_exit = True
        if serving is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(serving, timeout=5)
