"""The stream processor's loop: log → raw (stage 1) → derived tables (stage 2).

Each turn reads one micro-batch from every shard after the positions raw last recorded,
appends it to raw in one commit that also records the new positions and the next ingest
sequence, hands the rows to stage 2, then tells the log (advisorily) how far it got.

Start-up reads positions and sequence from raw's commits and, before reading the log,
lets stage 2 catch up on raw rows it has not applied (a crash between the two stages, or
inside stage 2). So a kill at any point ends, after a restart, with every acknowledged log
record in raw exactly once and stage 2 caught up.

With ``processor.stage2 = "separate"`` (the default) there is no stage 2 here: the
cleaner (``processor.cleaner``), a process of its own, derives it from raw's commits.

Between batches the loop compacts small files and, every few minutes, expires old
snapshots of the tables this process writes (``lake.maintenance``): raw only when the
cleaner runs stage 2, every lake table when stage 2 is inline. Each table is maintained by
the one process that commits to it, so neither conflicts with that process's own commits.

Transient failures (conflicting commits, busy catalog, log I/O) are logged and retried
with back-off; anything else stops the loop with the error, which ``run`` reports.

The loop knows no source: what a log record becomes in raw is the ``intake.LogRows`` that
``rows`` makes (SDK events by default; the CDC processor, ``processor.cdc``, runs this same
loop over the CDC log with its own rows, raw table and stage).
"""

from __future__ import annotations

import fcntl
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import pyarrow as pa
import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from insightloop.config import Config
from insightloop.errors import TerminalError
from insightloop.lake.catalog import NAMESPACES, lake_root, open_catalog
from insightloop.lake.maintenance import SnapshotRetention
from insightloop.lake.ownership import CLEANER, PROCESSOR, written_by
from insightloop.lake.raw_table import SDK_EVENTS, ensure_raw_table
from insightloop.log import Log
from insightloop.processor.catchup import catch_up
from insightloop.processor.commit import append_raw
from insightloop.processor.compaction import Compactor
from insightloop.processor.housekeeping import Housekeeping
from insightloop.processor.intake import BatchLimits, LogRows, read_batch
from insightloop.processor.metrics import ProcessorMetrics, attach_stage_metrics
from insightloop.processor.metrics import serve as serve_metrics
from insightloop.processor.progress import RawProgress, committed_progress
from insightloop.processor.raw_rows import RawRows
from insightloop.processor.retry import Backoff, is_transient, run_turns
from insightloop.processor.stage import DerivedStage
from insightloop.segment.message import Message

_log = structlog.get_logger(__name__)

#: The name under which the processor saves its (advisory) log checkpoints.
CONSUMER = "processor"
#: Pause when the log had nothing new.
IDLE_SECONDS = 0.05


class Processor:
    """Stage 1 over one log and one raw table, driving an optional stage 2."""

    def __init__(
        self,
        log: Log,
        catalog: Catalog,
        stage: DerivedStage | None,
        limits: BatchLimits,
        *,
        housekeeping: Housekeeping | None = None,
        metrics: ProcessorMetrics | None = None,
        raw_table: str = SDK_EVENTS,
        clock: Callable[[], float] = time.monotonic,
        rows: Callable[[], LogRows] = RawRows,
        consumer: str = CONSUMER,
        name: str = "processor",
    ) -> None:
        """``housekeeping`` compacts and expires this process's tables between batches (none
        by default); ``rows`` makes the (empty) rows each micro-batch's log records are added
        to; ``consumer`` names the log checkpoints; ``name`` the loop in logs."""
        self.log = log
        self.catalog = catalog
        self.stage = stage
        self.limits = limits
        self.metrics = metrics or ProcessorMetrics()
        self.housekeeping = housekeeping or Housekeeping(catalog, metrics=self.metrics)
        self._raw_name = raw_table
        self._rows = rows
        self._consumer = consumer
        self._name = name
        self._clock = clock
        self._table: Table | None = None
        self._progress = RawProgress({}, 0)
        #: Applies pending quarantine replays (inline stage 2); returns how many events.
        self.replays: Callable[[], int] | None = None
        self._stage_behind = True
        self._phase = "start"

    @property
    def compactor(self) -> Compactor | None:
        return self.housekeeping.compactor

    @property
    def retention(self) -> SnapshotRetention | None:
        return self.housekeeping.retention

    @property
    def progress(self) -> RawProgress:
        """What raw records: last offset per shard and last ingest sequence."""
        return self._progress

    @property
    def table(self) -> Table:
        if self._table is None:
            self.start()
        assert self._table is not None
        return self._table

    def start(self) -> None:
        """Resume from raw's commits (never from the log's advisory checkpoints)."""
        self._phase = "start"
        self._table = ensure_raw_table(self.catalog, self._raw_name)
        self._progress = committed_progress(self._table)
        self._stage_behind = True
        self.metrics.raw_seq.set(self._progress.seq)
        _log.info(
            "processor resuming",
            table=self._raw_name,
            seq=self._progress.seq,
            positions=self._progress.positions,
        )

    def catch_up(self) -> None:
        """Let stage 2 apply every raw sequence it lacks."""
        if self.stage is not None:
            self._phase = "stage2"
            started = self._clock()
            catch_up(self.table, self.stage, self._progress.seq, self.limits.max_events)
            self.metrics.stage_seconds.observe(self._clock() - started)
            self.metrics.stage_watermark.set(self._progress.seq)
        self._stage_behind = False

    def step(self, stop: threading.Event | None = None) -> int:
        """One turn: catch stage 2 up if needed, then read, commit and derive one batch.

        Returns the number of log records committed (0: the log had nothing new)."""
        if self._table is None:
            self.start()
        if self._stage_behind:
            self.catch_up()
        self._phase = "read"
        rows = read_batch(
            self.log, self._progress, self.limits, stop or threading.Event(), self._clock, self._rows()
        )
        if rows.records == 0:
            return 0
        data = self._commit(rows)
        self._derive(data, rows.messages)
        self._phase = "checkpoint"
        self._checkpoint(rows)
        self.housekeeping.turn_done()
        return rows.records

    def _commit(self, rows: LogRows) -> pa.Table:
        self._phase = "commit"
        started = self._clock()
        target = self._progress.advanced(rows.positions)
        data = rows.to_arrow(target.seq)
        built = self._clock()
        self.metrics.build_seconds.observe(built - started)
        append_raw(self.table, data, self._progress, target)
        self._progress = target
        m = self.metrics
        m.commit_seconds.observe(self._clock() - built)
        m.last_commit.set_to_current_time()
        m.raw_seq.set(target.seq)
        m.batches.inc()
        m.records_read.inc(rows.records)
        m.events_read.inc(len(rows))
        m.raw_rows.inc(data.num_rows)
        for kind, count in rows.rejected.items():
            m.rejected_rows.labels(kind).inc(count)
        return data

    def _derive(self, data: pa.Table, messages: Sequence[Message | None] | None) -> None:
        if self.stage is None:
            return
        self._phase = "stage2"
        started = self._clock()
        # Flag first: if apply fails (or the process dies), the next turn catches up from raw.
        self._stage_behind = True
        self.stage.apply(data, messages)
        self._stage_behind = False
        self.metrics.stage_seconds.observe(self._clock() - started)
        self.metrics.stage_watermark.set(self._progress.seq)

    def _checkpoint(self, rows: LogRows) -> None:
        for shard, offset in rows.positions.items():
            self.log.save_checkpoint(self._consumer, shard, offset)
            self.log.trim(shard, offset + 1)
        for shard in self.log.shards():
            lag = self.log.lag(shard, self._progress.after(shard))
            if lag.records is not None:
                self.metrics.lag_records.labels(shard).set(lag.records)

    def compact_if_due(self, idle: bool) -> None:
        """Compact small files every few batches, or now and then while idle."""
        if not self.housekeeping.compaction_due(idle):
            return
        self._phase = "compaction"
        self.housekeeping.compact()
        if self._table is not None:
            self._table.refresh()

    def maintain_if_due(self) -> None:
        """Expire old snapshots of this process's tables now and then (and on the first call)."""
        if not self.housekeeping.maintenance_due():
            return
        self._phase = "maintenance"
        self.housekeeping.expire_snapshots()
        if self._table is not None:
            self._table.refresh()

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set: the batch in hand is committed before returning.

        Transient failures are retried with back-off; others are raised."""
        run_turns(
            self._name,
            self._turn,
            stop,
            log=_log,
            metrics=self.metrics,
            phase=lambda: self._phase,
            restart=self._restart,
            idle=IDLE_SECONDS,
            idle_max=IDLE_SECONDS,
        )
        _log.info(f"{self._name} stopped", seq=self._progress.seq, positions=self._progress.positions)

    def _turn(self, stop: threading.Event) -> int:
        committed = self.step(stop)
        if self.replays is not None:
            self._phase = "replay"
            committed += self.replays()
        self.compact_if_due(idle=committed == 0)
        self.maintain_if_due()
        return committed

    def _restart(self) -> None:
        """Resume as after a restart: progress from raw, stage 2 caught up from raw."""
        self._table = None


#: The namespaces stage 1 writes (and so compacts and maintains) when stage 2 runs elsewhere.
STAGE1_NAMESPACES = ("raw",)


def build_processor(
    config: Config, log: Log, catalog: Catalog, metrics: ProcessorMetrics | None = None
) -> Processor:
    """The processor of ``config``: with ``processor.stage2 = "inline"``, stage 2 is the
    cleaned Segment tables and every lake table is this process's to maintain; otherwise
    stage 1 alone, maintaining raw only (the cleaner maintains the rest)."""
    metrics = metrics or ProcessorMetrics()
    settings = config.processor
    inline = settings.stage2_inline
    namespaces = NAMESPACES if inline else STAGE1_NAMESPACES
    owns = written_by(PROCESSOR, CLEANER) if inline else written_by(PROCESSOR)
    stage = cleaned_stage(catalog, config) if inline else None
    attach_stage_metrics(stage, metrics)
    processor = Processor(
        log,
        catalog,
        stage,
        BatchLimits(settings.max_batch_events, settings.max_batch_seconds),
        housekeeping=Housekeeping(
            catalog,
            Compactor(catalog, settings.compact_min_files, namespaces=namespaces, owns=owns, metrics=metrics),
            SnapshotRetention.from_config(config.lake),
            namespaces,
            metrics,
            owns=owns,
        ),
        metrics=metrics,
    )
    if stage is not None:
        from insightloop.quarantine.replay import replay_applier  # loads stage 2, as cleaned_stage does

        processor.replays = replay_applier(config, stage, catalog)
    return processor


def cleaned_stage(catalog: Catalog, config: Config) -> DerivedStage | None:
    """Stage 2 for SDK events (imported late: stage 1 works without it, with a warning)."""
    try:
        from insightloop.processor.cleaned.stage import CleanedStage
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("insightloop.processor.cleaned"):
            raise
        _log.warning("stage 2 (cleaned tables) is not installed: running stage 1 (raw) only")
        return None
    stage: DerivedStage = CleanedStage(catalog, config)
    return stage


def run(config: Config, stop: threading.Event | None = None) -> None:
    """Run the processor of ``config`` until ``stop`` is set (or, when no ``stop`` is given,
    SIGTERM/SIGINT arrives); the micro-batch in hand is committed first.

    Raises ``TerminalError`` (or the unexpected error) after logging it: the caller exits
    non-zero. Transient failures are retried inside."""
    from insightloop.log.factory import open_log

    if stop is None:
        stop = threading.Event()
        stop_on_signals(stop)
    lock = lake_root(config) / "processor.lock"
    with exclusive(lock, f"another processor holds {lock}: only one may run per lake"), _stage2_lock(config):
        log = open_log(config)
        try:
            catalog = open_catalog_retrying(config, stop)
            if catalog is not None:
                metrics = ProcessorMetrics()
                serve_metrics(metrics, config.collector.host, config.processor.metrics_port, "processor")
                build_processor(config, log, catalog, metrics).run(stop)
        finally:
            log.close()


def open_catalog_retrying(config: Config, stop: threading.Event) -> Catalog | None:
    """``open_catalog``, retried with back-off while it fails transiently (processes starting
    together race to create the SQLite catalog's tables and namespaces); None if ``stop`` is set
    first."""
    backoff = Backoff(first=0.1, cap=5.0)
    while not stop.is_set():
        try:
            return open_catalog(config)
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff.next_delay()
            _log.warning("catalog not ready", error=f"{type(exc).__name__}: {exc}", retry_in=round(delay, 2))
            stop.wait(delay)
    return None


def _stage2_lock(config: Config) -> AbstractContextManager[None]:
    """An inline processor also holds the cleaner's lock: stage 2 runs in one place only."""
    if not config.processor.stage2_inline:
        return nullcontext()
    path = lake_root(config) / CLEANER_LOCK
    return exclusive(
        path, f"a cleaner holds {path}: stop it before running the processor with processor.stage2 = 'inline'"
    )


def stop_on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())


#: The lock file (under the lake) of whoever runs stage 2.
CLEANER_LOCK = "cleaner.lock"


@contextmanager
def exclusive(path: Path, refusal: str, wait: float = 0.0) -> Iterator[None]:
    """Hold ``path``'s lock (one processor, one cleaner per lake: two would commit clashing
    sequences); raise ``TerminalError(refusal)`` if another process holds it for ``wait``
    seconds (a short-lived holder, e.g. ``quarantine replay`` applying itself, lets go)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() >= deadline:
                    raise TerminalError(refusal) from exc
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
