"""Stage 2 for CDC: ``raw.cdc_changes`` → per source table ``cleaned.app_<table>`` (current
state) and ``cleaned.app_<table>_changes`` (history), and ``quarantine.cdc_changes``;
exactly once. A ``processor.stage.DerivedStage``, run inline by the CDC processor.

One ``apply`` per raw batch (rows in ascending ``ingest_seq``):

1. rows at or below the watermark are ignored (complete everywhere);
2. rows are decoded into per-table events (``events``); every table's batch is read and
   folded (``table_batch``, ``fold``) before anything is committed;
3. problems (rejected rows, bad values, incompatible type changes) are appended to
   quarantine, leaving out what it already recorded;
4. per table: history, then current state, each one commit recording the batch's top
   ``ingest_seq`` and leaving out what that table already holds;
5. the watermark (``marker``) moves to the top sequence.

A crash anywhere is a restart: the runner re-applies raw above the watermark, each table
skips its own recorded sequences, and the LSN guard in ``fold`` makes re-applying a change
a no-op anyway (so even raw holding a change twice, e.g. redelivered by the reader, adds no
history and changes nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import structlog
from pyiceberg.catalog import Catalog

from insightloop.config import Config
from insightloop.lake.watermarks import RAW_SEQ
from insightloop.processor.cdc import quarantine, store
from insightloop.processor.cdc.events import Problem, parse
from insightloop.processor.cdc.marker import Marker, read_marker
from insightloop.processor.cdc.table_batch import Outcome, TableBatch
from insightloop.segment.message import Message

_log = structlog.get_logger(__name__)


@dataclass(slots=True)
class CdcApplyStats:
    """What the last ``apply`` did (for metrics and benchmarks)."""

    rows: int = 0
    changes: int = 0
    applied: int = 0
    history_rows: int = 0
    quarantined: int = 0
    quarantine_kinds: dict[str, int] = field(default_factory=dict)
    tables: list[Outcome] = field(default_factory=list)
    #: Newest commit time among the batch's changes, µs since the epoch (for lag).
    newest_change_us: int | None = None
    read_seconds: float = 0.0
    commit_seconds: float = 0.0


def state_directory(config: Config) -> Path:
    """Where the CDC stage keeps its watermark."""
    return config.path("processor", "cdc")


def stored_watermark(config: Config) -> int:
    return read_marker(state_directory(config))


class CdcStage:
    """``DerivedStage`` writing ``cleaned.app_*`` and ``quarantine.cdc_changes`` from raw CDC rows."""

    def __init__(self, catalog: Catalog, state_dir: Path, *, clock: Callable[[], int] | None = None) -> None:
        self._catalog = catalog
        self._marker = Marker(state_dir)
        self._clock = clock or (lambda: time.time_ns() // 1000)
        self.stats = CdcApplyStats()
        #: Called with the stats after each ``apply`` that wrote (metrics hook in here).
        self.observers: list[Callable[[CdcApplyStats], None]] = []
        #: Called with the table's name after each table's commits (tests inject crashes here).
        self.after_table: Callable[[str], None] | None = None

    def watermark(self) -> int:
        return self._marker.value

    def reload(self) -> None:
        """Nothing cached between applies: every apply loads its tables afresh."""

    def apply(self, raw: pa.Table, messages: Sequence[Message | None] | None = None) -> None:
        self.stats = stats = CdcApplyStats(rows=raw.num_rows)
        if raw.num_rows == 0:
            return
        marker = self._marker.value
        seqs = raw.column("ingest_seq")
        top: int = pc.max(seqs).as_py()
        if top <= marker:
            return
        if pc.min(seqs).as_py() <= marker:
            raw = raw.filter(pc.greater(seqs, marker))
        started = time.perf_counter()
        parsed = parse(raw)
        batches = [TableBatch(self._catalog, table, events) for table, events in parsed.by_table.items()]
        problems: list[Problem] = list(parsed.problems)
        for batch in batches:
            batch.prepare()
            problems.extend(batch.problems)
        stats.changes = sum(len(events) for events in parsed.by_table.values())
        stats.read_seconds = time.perf_counter() - started
        started = time.perf_counter()
        self._quarantine(problems, top)
        for batch in batches:
            outcome = batch.commit(top)
            stats.tables.append(outcome)
            stats.applied += outcome.changes
            stats.history_rows += outcome.history_rows
            if self.after_table is not None:
                self.after_table(batch.source_table)
        stats.commit_seconds = time.perf_counter() - started
        stats.newest_change_us = _newest_change(raw)
        self._marker.write(top)
        for observer in self.observers:
            observer(stats)

    def _quarantine(self, problems: list[Problem], top: int) -> None:
        if not problems:
            return
        table = quarantine.ensure_table(self._catalog)
        done = store.table_seq(table)
        fresh = [p for p in problems if p.seq > done]
        for problem in fresh:
            self.stats.quarantine_kinds[str(problem.kind)] = (
                self.stats.quarantine_kinds.get(str(problem.kind), 0) + 1
            )
        self.stats.quarantined = len(fresh)
        if fresh:
            store.append_rows(table, quarantine.rows(fresh, self._clock()), None, {RAW_SEQ: str(top)})
            _log.warning("cdc changes quarantined", rows=len(fresh), kinds=self.stats.quarantine_kinds)


def _newest_change(raw: pa.Table) -> int | None:
    times = raw.column("event_time")
    newest = pc.max(times).as_py()
    if newest is None:
        return None
    return int(newest.timestamp() * 1_000_000)
