"""Running the CDC reader as a process: one per data directory (a file lock), its metrics
endpoint, stop on SIGTERM/SIGINT after flushing what is in hand."""

from __future__ import annotations

import threading

from insightloop.cdc.metrics import CdcMetrics
from insightloop.cdc.reader import Reader
from insightloop.config import Config
from insightloop.processor.metrics import serve


def source_dsn(config: Config) -> str:
    """``cdc.dsn``, or (when empty) the embedded demo database's, started if needed."""
    if config.cdc.dsn:
        return config.cdc.dsn
    from insightloop.cdc.appdb.server import ensure_started

    return ensure_started(config)


def run_reader(config: Config, stop: threading.Event | None = None) -> None:
    """Run the CDC reader of ``config`` until ``stop`` is set (or SIGTERM/SIGINT when no
    ``stop`` is given). Raises ``ConfigError``/``TerminalError`` for what a retry cannot fix."""
    from insightloop.log.factory import open_cdc_log
    from insightloop.processor.runner import exclusive, stop_on_signals

    if stop is None:
        stop = threading.Event()
        stop_on_signals(stop)
    lock = config.path("cdc", "reader.lock")
    with exclusive(lock, f"another CDC reader holds {lock}: only one may run per data directory"):
        dsn = source_dsn(config)
        log = open_cdc_log(config)
        try:
            metrics = CdcMetrics()
            serve(metrics, config.collector.host, config.cdc.metrics_port, "cdc-reader")
            Reader(config, dsn, log, metrics).run(stop)
        finally:
            log.close()
