"""Bringing stage 2 up to raw: re-derive from the raw rows it has not applied yet.

Used at start-up and after stage 2 failed on a batch. Raw rows are read back by
``ingest_seq`` windows (whole sequence numbers, ascending), sized to stay near one
micro-batch of rows, and handed to the stage without decoded messages.
"""

from __future__ import annotations

import pyarrow as pa
import structlog
from pyiceberg.table import Table

from insightloop.errors import TerminalError
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA
from insightloop.processor.stage import DerivedStage

_log = structlog.get_logger(__name__)


def read_raw(table: Table, after_seq: int, through_seq: int) -> pa.Table:
    """Raw rows with ``after_seq < ingest_seq <= through_seq``, ascending by ``ingest_seq``."""
    rows = table.scan(row_filter=f"ingest_seq > {after_seq} and ingest_seq <= {through_seq}").to_arrow()
    rows = rows.cast(RAW_ARROW_SCHEMA) if rows.schema != RAW_ARROW_SCHEMA else rows
    return rows.sort_by([("ingest_seq", "ascending")])


def catch_up(table: Table, stage: DerivedStage, through_seq: int, target_rows: int) -> int:
    """Apply raw sequences after ``stage.watermark()`` through ``through_seq``; returns rows applied."""
    done = stage.watermark()
    if done > through_seq:
        raise TerminalError(
            f"stage 2 has applied raw seq {done} but {'.'.join(table.name())} ends at seq {through_seq}: "
            "was the raw table replaced? Stage 2 would skip the new rows; rebuild it from raw first"
        )
    if done == through_seq:
        return 0
    _log.info("stage 2 catching up from raw", table=".".join(table.name()), after=done, through=through_seq)
    window = 1
    applied = 0
    while done < through_seq:
        upto = min(done + window, through_seq)
        rows = read_raw(table, done, upto)
        stage.apply(rows, None)
        applied += rows.num_rows
        done = upto
        # Grow the window while windows are small, shrink it when they get big.
        if rows.num_rows < target_rows // 4:
            window *= 2
        elif rows.num_rows > target_rows * 2 and window > 1:
            window //= 2
    _log.info("stage 2 caught up", table=".".join(table.name()), through=through_seq, rows=applied)
    return applied
