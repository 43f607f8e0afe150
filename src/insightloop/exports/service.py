"""The file loader process (``insightloop loader``): polls the landing zone and loads each new
or changed file, one at a time, until SIGTERM/SIGINT. The files one look found are merged
into cleaned together (one rewrite of an entity's table for the parts of a day), or every
``exports.merge_after_mb`` of them.

One per lake (the lock ``lake/file-loader.lock``, which ``insightloop load`` takes too). At
start it finishes what a crash left (``FileLoader.catch_up``). A file is looked at when it is
new, when its size or modification time changed since it was last looked at, or when its
last look did not finish (``discovered``/``loading``/``failed``); a ``loaded``, ``unchanged``
or ``rejected`` file is left alone until it changes. SIGTERM stops a load between two batches
(nothing of it is committed; it loads again at the next start). Between files it compacts
and expires the snapshots of its own tables only (``lake.ownership.FILE_LOADER``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from pyiceberg.catalog import Catalog

from insightloop.config import Config
from insightloop.exports.landing import LandedFile, Landing
from insightloop.exports.loader import FileLoader, LoadInterrupted, LoadOutcome, lock_path
from insightloop.exports.metrics import ExportMetrics
from insightloop.exports.status import DISCOVERED, FAILED, LOADING, FileStatus, StatusBook, now
from insightloop.lake.catalog import NAMESPACES
from insightloop.lake.maintenance import SnapshotRetention
from insightloop.lake.ownership import FILE_LOADER, written_by
from insightloop.processor.compaction import Compactor
from insightloop.processor.housekeeping import Housekeeping
from insightloop.processor.metrics import serve as serve_metrics
from insightloop.processor.runner import exclusive, open_catalog_retrying, stop_on_signals

_log = structlog.get_logger(__name__)
SERVICE = "file-loader"


def due(files: list[LandedFile], statuses: StatusBook) -> list[LandedFile]:
    """The files to look at now (new, changed, or not finished), marking new ones discovered."""
    found = []
    for file in files:
        modified = file.modified.isoformat() if file.modified else None
        known = statuses.get(file.uri)
        if known is None or (known.size, known.modified) != (file.size, modified):
            statuses.set(
                FileStatus(file.uri, file.source, file.entity, DISCOVERED, now(), file.size, modified)
            )
            found.append(file)
        elif known.status in (DISCOVERED, LOADING, FAILED):
            found.append(file)
    return found


def stopping(stop: threading.Event) -> Callable[[int, float], None]:
    """A progress callback that interrupts a load once ``stop`` is set."""

    def check(_rows: int, _fraction: float) -> None:
        if stop.is_set():
            raise LoadInterrupted("stopped")

    return check


class LoaderService:
    def __init__(self, config: Config, catalog: Catalog, metrics: ExportMetrics) -> None:
        owns = written_by(FILE_LOADER)
        self.loader = FileLoader(config, catalog)
        self.landing = Landing.from_config(config)
        self.metrics = metrics
        self._poll = config.exports.poll_seconds
        self.housekeeping = Housekeeping(
            catalog,
            Compactor(catalog, config.processor.compact_min_files, owns=owns, metrics=metrics),
            SnapshotRetention.from_config(config.lake),
            NAMESPACES,
            metrics,
            owns=owns,
        )

    def run(self, stop: threading.Event) -> None:
        _log.info("file loader started", landing=self.landing.root)
        while not stop.is_set():
            # First what a crash or a failed merge left in raw (its files then read loaded,
            # not due): at the start, and after a failure to write.
            self.loader.catch_up_if_needed()
            files = due(self.landing.discover(), self.loader.statuses)
            self._load(files, stop)
            self._maintain(idle=not files)
            stop.wait(self._poll)

    def _load(self, files: list[LandedFile], stop: threading.Event) -> None:
        """Stage 1 of each of ``files``; stage 2 of those loaded whenever they add up to
        ``exports.merge_after_mb``, and at the end. When stopped, what is in raw but not
        merged is left to the next start (``catch_up``): a merge can take minutes."""
        committed: list[LoadOutcome] = []
        for file in files:
            if stop.is_set():
                break
            try:
                committed.append(self.loader.commit(file, stopping(stop)))
            except LoadInterrupted:
                _log.info("load interrupted", file=file.uri)
                break
            if self.loader.merge_due(committed):
                self._finish(committed)
                committed = []
        if not stop.is_set():
            self._finish(committed)

    def _finish(self, committed: list[LoadOutcome]) -> None:
        for outcome in self.loader.finish(committed):
            self.metrics.observe(outcome)
            self.housekeeping.turn_done()

    def _maintain(self, idle: bool) -> None:
        if self.housekeeping.compaction_due(idle):
            self.housekeeping.compact()
        if self.housekeeping.maintenance_due():
            self.housekeeping.expire_snapshots()


def run(config: Config, stop: threading.Event | None = None) -> None:
    """Run the file loader of ``config`` until ``stop`` is set (or SIGTERM/SIGINT)."""
    if stop is None:
        stop = threading.Event()
        stop_on_signals(stop)
    lock = lock_path(config)
    with exclusive(lock, f"another file loader holds {lock}: only one may run per lake"):
        catalog = open_catalog_retrying(config, stop)
        if catalog is None:
            return
        metrics = ExportMetrics()
        serve_metrics(metrics, config.collector.host, config.exports.metrics_port, SERVICE)
        LoaderService(config, catalog, metrics).run(stop)
