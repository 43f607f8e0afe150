"""The hand-off between the processor's two stages.

Stage 1 (``runner``) appends log records to the raw table, recording the consumed log
positions and the raw ingest sequence in the same Iceberg commit. Stage 2 (a
``DerivedStage``, e.g. the cleaned Segment tables) derives its tables from raw rows; each of
its tables' commits records the highest raw ``ingest_seq`` it includes, so after a crash
between two tables' commits it redoes exactly what each table lacks. Streaming, replay and
backfill are the same call over a range of raw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa

from insightloop.segment.message import Message


class DerivedStage(Protocol):
    def watermark(self) -> int:
        """The highest raw ``ingest_seq`` that every table of this stage includes (0: none)."""
        ...

    def apply(self, raw: pa.Table, messages: Sequence[Message | None] | None = None) -> None:
        """Derive from raw rows (``lake.raw_table.RAW_ARROW_SCHEMA``, ascending ``ingest_seq``,
        all of each sequence number present). ``messages``, when given, are the rows'
        payloads already decoded (None for rejected rows), saving a second decode.

        Idempotent: rows at or below a table's recorded sequence are skipped for that table."""
        ...
