"""The collector's Starlette app: the Segment HTTP Tracking API, ``/health`` and ``/metrics``.

The log writer and the lag monitor run inside the app's lifespan: serve it with uvicorn
(which runs the lifespan) or, in tests, ``with TestClient(app) as client``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from insightloop.collector import responses
from insightloop.collector.auth import WriteKeys
from insightloop.collector.endpoint import IngestEndpoint
from insightloop.collector.metrics import CONTENT_TYPE, CollectorMetrics
from insightloop.collector.pressure import LagMonitor
from insightloop.collector.writer import LogWriter
from insightloop.config import Config
from insightloop.log import Log


def create_app(config: Config, log: Log, *, lag_check_seconds: float = 0.5) -> Starlette:
    """The collector over ``log`` (which the caller opens and closes)."""
    settings = config.collector
    metrics = CollectorMetrics()
    writer = LogWriter(log, settings.max_pending_requests, metrics)
    lag = LagMonitor(log, settings.max_log_lag_records, lag_check_seconds, metrics)
    ingest = IngestEndpoint(settings, WriteKeys(config.source_for_write_key()), writer, lag, metrics)
    metrics.watch_queue(writer.depth)

    async def health(request: Request) -> Response:
        if not writer.running:
            status = "stopped"
        elif lag.overloaded:
            status = "backpressure"
        elif writer.last_error or lag.error:
            status = "degraded"
        else:
            status = "ok"
        body = {
            "status": status,
            "log": {
                "shards": log.shards(),
                "lag_records": lag.lag_records,
                "max_lag_records": lag.max_lag_records,
                "append_error": writer.last_error,
                "lag_error": lag.error,
            },
            "queue": {"depth": writer.depth(), "max": writer.max_pending},
        }
        return responses.json(body, 200 if writer.running else 503)

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await writer.start()
        await lag.start()
        try:
            yield
        finally:
            await lag.stop()
            await writer.stop()

    routes = [
        Route("/v1/{kind}", ingest.handle, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
