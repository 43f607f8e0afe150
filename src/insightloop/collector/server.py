"""Run the collector: the app on uvicorn, over the log the configuration names."""

from __future__ import annotations

import uvicorn

from insightloop.collector.app import create_app
from insightloop.config import Config
from insightloop.log.factory import open_log


def serve(config: Config) -> None:
    """Serve on ``collector.host:port`` until SIGINT/SIGTERM; requests already accepted are
    written to the log before the process exits.

    Open connections are capped (uvicorn answers 503 beyond) so that the bodies being read
    at once stay bounded in memory: twice the writer queue, plus room for idle keep-alives.
    """
    log = open_log(config)
    try:
        app = create_app(config, log)
        uvicorn.run(
            app,
            host=config.collector.host,
            port=config.collector.port,
            lifespan="on",
            access_log=False,
            log_level="info",
            timeout_graceful_shutdown=30,
            limit_concurrency=2 * config.collector.max_pending_requests + 64,
        )
    finally:
        log.close()
