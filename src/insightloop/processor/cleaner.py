"""The cleaner: stage 2 (raw → cleaned.* and quarantine.*) in a process of its own.

With ``processor.stage2 = "separate"`` (the default) the processor runs stage 1 only (log →
raw) and this loop follows raw's commits, so the two stages use two cores. Each turn
refreshes the raw table, reads the ingest sequence raw has committed (``RAW_SEQ``) and,
when the stage's watermark is behind it, applies the raw rows above the watermark
(``catchup.catch_up``: bounded ingest-sequence windows, reading only manifests newer than
the last turn's). Otherwise it waits ``POLL_SECONDS``. A crash anywhere is just a restart:
the stage's watermark and each table's recorded sequence say what is done
(``processor.stage``), so a kill -9 at any point ends, after a restart, with every raw row
in cleaned or quarantine exactly once.

After each turn it applies the quarantine replays ``insightloop quarantine replay`` queued
(``quarantine.replay``): only this process commits to stage 2's tables.

Between turns the cleaner compacts and expires the snapshots of the tables it writes
(cleaned.*, quarantine.*), never raw's: each table is maintained by the one process that
commits to it, so maintenance never conflicts with another process's commits.

Transient failures are retried with back-off as in the processor's loop; anything else
stops it with the error, which ``run`` reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from insightloop.config import Config
from insightloop.errors import ConfigError
from insightloop.lake.catalog import lake_root
from insightloop.lake.maintenance import SnapshotRetention
from insightloop.lake.ownership import CLEANER, written_by
from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.processor.catchup import RawCursor, catch_up
from insightloop.processor.compaction import Compactor
from insightloop.processor.housekeeping import Housekeeping
from insightloop.processor.metrics import ProcessorMetrics, attach_stage_metrics
from insightloop.processor.metrics import serve as serve_metrics
from insightloop.processor.progress import committed_progress
from insightloop.processor.retry import run_turns
from insightloop.processor.runner import (
    CLEANER_LOCK,
    cleaned_stage,
    exclusive,
    open_catalog_retrying,
    stop_on_signals,
)
from insightloop.processor.stage import DerivedStage

_log = structlog.get_logger(__name__)

#: Pause when raw had nothing new, growing while it stays so (each look reloads raw's
#: metadata): acceptance → visibility latency is about one raw batch plus this.
POLL_SECONDS = 0.05
POLL_MAX_SECONDS = 0.2
#: The namespaces stage 2 writes, and so compacts and maintains.
STAGE2_NAMESPACES = ("cleaned", "quarantine")
#: A turn applies at most this many micro-batches of rows, so that a long backlog still
#: leaves room for compaction and snapshot expiry between turns.
BATCHES_PER_TURN = 10
#: How long a starting cleaner waits for the lake's cleaner lock before refusing to run.
LOCK_WAIT_SECONDS = 30.0


@runtime_checkable
class Reloadable(Protocol):
    """A stage that caches table handles, and can be told to reload them."""

    def reload(self) -> None: ...


class Cleaner:
    """Stage 2 following one raw table."""

    def __init__(
        self,
        catalog: Catalog,
        stage: DerivedStage,
        max_batch_events: int,
        *,
        housekeeping: Housekeeping | None = None,
        metrics: ProcessorMetrics | None = None,
        raw_table: str = SDK_EVENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``housekeeping`` compacts and expires the stage's tables between turns (none by
        default; ``build_cleaner`` makes the cleaner's)."""
        self.catalog = catalog
        self.stage = stage
        self.max_batch_events = max_batch_events
        self.metrics = metrics or ProcessorMetrics()
        self.housekeeping = housekeeping or Housekeeping(catalog, metrics=self.metrics)
        self._raw_name = raw_table
        self._clock = clock
        self._table: Table | None = None
        self._cursor = RawCursor()
        self._phase = "start"
        #: Applies pending quarantine replays (``quarantine.replay``); returns how many.
        self.replays: Callable[[], int] | None = None

    @property
    def compactor(self) -> Compactor | None:
        return self.housekeeping.compactor

    @property
    def retention(self) -> SnapshotRetention | None:
        return self.housekeeping.retention

    def _raw(self) -> Table | None:
        """The raw table at its newest commit (None while stage 1 has not created it)."""
        self._phase = "read"
        if self._table is None:
            try:
                self._table = self.catalog.load_table(self._raw_name)
            except NoSuchTableError:
                return None
        else:
            self._table.refresh()
        return self._table

    def step(self, stop: threading.Event | None = None) -> int:
        """One turn: apply what raw has committed beyond the stage's watermark (at most
        ``BATCHES_PER_TURN`` micro-batches of rows). Returns the raw rows applied (0: none new)."""
        table = self._raw()
        if table is None:
            return 0
        through = committed_progress(table).seq
        self.metrics.raw_seq.set(through)
        if self.stage.watermark() == through:
            return 0
        self._phase = "stage2"
        started = self._clock()
        applied = catch_up(
            table,
            self.stage,
            through,
            self.max_batch_events,
            cursor=self._cursor,
            stop=stop,
            max_rows=self.max_batch_events * BATCHES_PER_TURN,
        )
        m = self.metrics
        m.stage_seconds.observe(self._clock() - started)
        m.stage_watermark.set(self.stage.watermark())
        m.batches.inc()
        m.raw_rows.inc(applied)
        self.housekeeping.turn_done()
        return applied

    def compact_if_due(self, idle: bool) -> None:
        """Compact this process's tables every few turns, or now and then while idle; one
        table per turn, until none is left to rewrite."""
        if not self.housekeeping.compaction_due(idle):
            return
        self._phase = "compaction"
        if self.housekeeping.compact():
            self._reload_stage()

    def maintain_if_due(self) -> None:
        """Expire old snapshots of this process's tables now and then (and on the first call)."""
        if not self.housekeeping.maintenance_due():
            return
        self._phase = "maintenance"
        self.housekeeping.expire_snapshots()
        self._reload_stage()

    def _reload_stage(self) -> None:
        if isinstance(self.stage, Reloadable):
            self.stage.reload()

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set: the window in hand is applied before returning.

        Transient failures are retried with back-off; others are raised."""
        _log.info("cleaner resuming", table=self._raw_name, watermark=self.stage.watermark())
        run_turns(
            "cleaner",
            self._turn,
            stop,
            log=_log,
            metrics=self.metrics,
            phase=lambda: self._phase,
            restart=self._restart,
            idle=POLL_SECONDS,
            idle_max=POLL_MAX_SECONDS,
        )
        _log.info("cleaner stopped", watermark=self.stage.watermark())

    def _turn(self, stop: threading.Event) -> int:
        applied = self.step(stop)
        if self.replays is not None:
            self._phase = "replay"
            applied += self.replays()
        self.compact_if_due(idle=applied == 0)
        self.maintain_if_due()
        return applied

    def _restart(self) -> None:
        """Resume as after a restart: raw reloaded, the stage from its watermark."""
        self._table = None


def refuse_inline(config: Config) -> None:
    """Raise ``ConfigError`` when ``config`` runs stage 2 in the processor."""
    if config.processor.stage2_inline:
        raise ConfigError(
            "processor.stage2 is 'inline': the processor runs stage 2 itself, so there is no cleaner "
            "to run (set processor.stage2 = 'separate' to run stage 2 in the cleaner)"
        )


def build_cleaner(config: Config, catalog: Catalog, metrics: ProcessorMetrics | None = None) -> Cleaner:
    """The cleaner of ``config``: the cleaned Segment tables, maintaining cleaned.* and quarantine.*."""
    refuse_inline(config)
    stage = cleaned_stage(catalog, config)
    if stage is None:
        raise ConfigError(
            "stage 2 (insightloop.processor.cleaned) is not installed: nothing for a cleaner to do"
        )
    metrics = metrics or ProcessorMetrics()
    attach_stage_metrics(stage, metrics)
    owns = written_by(CLEANER)
    cleaner = Cleaner(
        catalog,
        stage,
        config.processor.max_batch_events,
        # One table per compaction: the stage's commits wait for one table's rewrite, not all.
        housekeeping=Housekeeping(
            catalog,
            Compactor(
                catalog,
                config.processor.compact_min_files,
                namespaces=STAGE2_NAMESPACES,
                owns=owns,
                metrics=metrics,
            ),
            SnapshotRetention.from_config(config.lake),
            STAGE2_NAMESPACES,
            metrics,
            max_tables=1,
            owns=owns,
        ),
        metrics=metrics,
    )
    from insightloop.quarantine.replay import replay_applier  # loads stage 2, as cleaned_stage does

    cleaner.replays = replay_applier(config, stage, catalog)
    return cleaner


def run(config: Config, stop: threading.Event | None = None) -> None:
    """Run the cleaner of ``config`` until ``stop`` is set (or, when no ``stop`` is given,
    SIGTERM/SIGINT arrives); the window in hand is applied first.

    Raises ``ConfigError`` when stage 2 runs inline, ``TerminalError`` when another cleaner
    holds the lake's cleaner lock (or the unexpected error, after logging it): the caller
    exits non-zero. Transient failures are retried inside."""
    if stop is None:
        stop = threading.Event()
        stop_on_signals(stop)
    refuse_inline(config)
    lock = lake_root(config) / CLEANER_LOCK
    # A replay applied by `insightloop quarantine replay` holds the lock for a few seconds.
    with exclusive(lock, f"another cleaner holds {lock}: only one may run per lake", wait=LOCK_WAIT_SECONDS):
        catalog = open_catalog_retrying(config, stop)
        if catalog is not None:
            metrics = ProcessorMetrics()
            serve_metrics(metrics, config.collector.host, config.processor.cleaner_metrics_port, "cleaner")
            build_cleaner(config, catalog, metrics).run(stop)
