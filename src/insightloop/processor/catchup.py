"""Bringing stage 2 up to raw: re-derive from the raw rows it has not applied yet.

Used by the cleaner (``processor.cleaner``) after every raw commit, and by an inline
processor at start-up and after stage 2 failed on a batch. Raw rows are read back by
``ingest_seq`` windows (whole sequence numbers, ascending), sized to stay near one
micro-batch of rows, and handed to the stage without decoded messages.

Reading is incremental. The scan's row filter prunes data files by their ``ingest_seq``
bounds, but planning a scan still opens every manifest of the table. A ``RawCursor``
remembers the raw snapshot it last read up to: every row above that snapshot's sequence
arrived in a later commit (stage 1 appends, or compaction rewrites), so only manifests
written after it (manifest ``sequence_number`` higher than the snapshot's) can hold one,
and the older manifests are never opened again. The cost of a poll then follows what is
new in raw, not how much raw holds.
"""

from __future__ import annotations

import threading

import pyarrow as pa
import structlog
from pyiceberg.expressions.parser import parse
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.table import ManifestGroupPlanner, Table

from insightloop.errors import TerminalError
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA
from insightloop.processor.stage import DerivedStage

_log = structlog.get_logger(__name__)


class RawCursor:
    """Where in raw's history a reader's rows are known to stop: rows above ``seq`` lie only
    in manifests newer than ``manifest_seq`` (of the table ``table_uuid``)."""

    def __init__(self) -> None:
        self.table_uuid: str | None = None
        self.seq = -1
        self.manifest_seq = 0

    def floor(self, table: Table, after_seq: int) -> int:
        """The manifest sequence number at or below which no row above ``after_seq`` lies."""
        if str(table.metadata.table_uuid) != self.table_uuid or after_seq < self.seq:
            return 0
        return self.manifest_seq

    def mark(self, table: Table, through_seq: int) -> None:
        """``table``'s current snapshot holds raw through ``through_seq`` and nothing above."""
        snapshot = table.metadata.current_snapshot()
        if snapshot is None or table.metadata.format_version < 2:
            return  # no sequence numbers before format v2: always read every manifest
        self.table_uuid = str(table.metadata.table_uuid)
        self.seq = through_seq
        self.manifest_seq = snapshot.sequence_number or 0


def read_raw(table: Table, after_seq: int, through_seq: int, manifest_floor: int = 0) -> pa.Table:
    """Raw rows with ``after_seq < ingest_seq <= through_seq``, ascending by ``ingest_seq``,
    from the manifests written after sequence number ``manifest_floor`` (0: all)."""
    metadata = table.metadata
    snapshot = metadata.current_snapshot()
    if snapshot is None:
        return RAW_ARROW_SCHEMA.empty_table()
    row_filter = parse(f"ingest_seq > {after_seq} and ingest_seq <= {through_seq}")
    manifests = snapshot.manifests(table.io)
    if manifest_floor > 0:
        manifests = [m for m in manifests if (m.sequence_number or 0) > manifest_floor]
    tasks = ManifestGroupPlanner(metadata, table.io, row_filter).plan_files(manifests)
    rows = ArrowScan(metadata, table.io, metadata.schema(), row_filter).to_table(tasks)
    rows = rows.cast(RAW_ARROW_SCHEMA) if rows.schema != RAW_ARROW_SCHEMA else rows
    return rows.sort_by([("ingest_seq", "ascending")])


def catch_up(
    table: Table,
    stage: DerivedStage,
    through_seq: int,
    target_rows: int,
    *,
    cursor: RawCursor | None = None,
    stop: threading.Event | None = None,
    max_rows: int | None = None,
) -> int:
    """Apply raw sequences after ``stage.watermark()`` through ``through_seq``, which
    ``table``'s current snapshot must end at; returns rows applied.

    With ``stop``, returns early (after a whole window) once it is set; with ``max_rows``,
    once that many rows are applied (the rest is for the next call). With ``cursor``,
    reads only manifests newer than the cursor's last mark, and marks the cursor at the end."""
    done = stage.watermark()
    if done > through_seq:
        raise TerminalError(
            f"stage 2 has applied raw seq {done} but {'.'.join(table.name())} ends at seq {through_seq}: "
            "was the raw table replaced? Stage 2 would skip the new rows; rebuild it from raw first"
        )
    if done == through_seq:
        if cursor is not None:
            cursor.mark(table, through_seq)
        return 0
    floor = 0 if cursor is None else cursor.floor(table, done)
    quiet = floor > 0  # a cursor-driven poll: one line per poll would flood the log
    name = ".".join(table.name())
    if not quiet:
        _log.info("stage 2 catching up from raw", table=name, after=done, through=through_seq)
    window = 1
    applied = 0
    while done < through_seq:
        if (stop is not None and stop.is_set()) or (max_rows is not None and applied >= max_rows):
            return applied
        upto = min(done + window, through_seq)
        rows = read_raw(table, done, upto, floor)
        stage.apply(rows, None)
        applied += rows.num_rows
        done = upto
        # Grow the window while windows are small, shrink it when they get big.
        if rows.num_rows < target_rows // 4:
            window *= 2
        elif rows.num_rows > target_rows * 2 and window > 1:
            window //= 2
    if cursor is not None:
        cursor.mark(table, through_seq)
    if not quiet:
        _log.info("stage 2 caught up", table=name, through=through_seq, rows=applied)
    return applied
