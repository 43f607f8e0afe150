"""Reading one micro-batch from the log: every shard after its committed position, until
the batch holds ``max_events`` rows or ``max_seconds`` have passed since its first record
(or ``stop`` is set). An empty log gives an empty batch at once, so the caller can idle.
A batch may pass ``max_events`` by up to one record's events.

What a record becomes is the ``LogRows`` the caller names (``raw_rows.RawRows``, SDK
events, by default; the CDC processor passes its own), so one loop serves every source."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec
import pyarrow as pa

from insightloop.log import Log
from insightloop.processor.progress import RawProgress
from insightloop.processor.raw_rows import RawRows
from insightloop.segment.message import Message
from insightloop.types import LogRecord

#: Records asked of a shard per read; one record holds one request's events (1-500).
RECORDS_PER_READ = 500
#: Pause between polls of a batch that is open but has nothing new to read.
POLL_SECONDS = 0.05


class LogRows(Protocol):
    """Raw rows accumulating from one micro-batch's log records (``raw_rows.RawRows``)."""

    #: Last offset included, per shard.
    positions: dict[str, int]
    #: Rejected rows by failure kind (for metrics).
    rejected: Counter[str]
    #: Log records added.
    records: int

    @property
    def messages(self) -> Sequence[Message | None] | None:
        """The rows' payloads decoded for stage 2, aligned with the rows (None: not decoded)."""
        ...

    def __len__(self) -> int: ...

    def add(self, record: LogRecord) -> int:
        """Add one log record's rows; returns how many rows it made."""
        ...

    def to_arrow(self, ingest_seq: int) -> pa.Table:
        """The rows as a table of ``RAW_ARROW_SCHEMA``, numbered with ``ingest_seq``."""
        ...


class BatchLimits(msgspec.Struct, frozen=True):
    max_events: int
    max_seconds: float
    poll_seconds: float = POLL_SECONDS


def read_batch(
    log: Log,
    progress: RawProgress,
    limits: BatchLimits,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
    rows: LogRows | None = None,
) -> LogRows:
    """The rows of the records after ``progress`` (``rows.positions``: the last offsets read),
    added to ``rows`` (a fresh ``RawRows`` when None)."""
    rows = RawRows() if rows is None else rows
    after = dict(progress.positions)
    shards = log.shards()
    deadline: float | None = None
    while True:
        got = 0
        for shard in shards:
            budget = limits.max_events - len(rows)
            if budget <= 0:
                break
            records = log.read(shard, after.get(shard), max_records=_records_for(budget, rows))
            for record in records:
                rows.add(record)
            if records:
                after[shard] = records[-1].position.offset
                got += len(records)
        if len(rows) >= limits.max_events or (rows.records == 0 and got == 0) or stop.is_set():
            return rows
        now = clock()
        if deadline is None:
            deadline = now + limits.max_seconds
        elif now >= deadline:
            return rows
        if got == 0:
            stop.wait(min(limits.poll_seconds, max(deadline - now, 0.0)))


def _records_for(events: int, rows: LogRows) -> int:
    """How many records to ask for to get about ``events`` more rows. Records hold 1-500
    events each: the batch's first read takes one record, later reads estimate from those
    read so far, so a batch passes its limit by about one record at most."""
    if rows.records == 0 or len(rows) == 0:
        return 1
    return max(1, min(int(events * rows.records / len(rows)), RECORDS_PER_READ))
