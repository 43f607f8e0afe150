"""Rows in PostgreSQL's text format → Debezium-shaped change envelopes (``changes``).

A ``TableShape`` is what the reader knows of a table at a point in the stream (from its
latest Relation message, or from the catalog for the snapshot): column names, PostgreSQL
types and key flags. ``Envelopes`` makes ``CapturedChange`` records from rows of a shape;
the event id is ``change_event_id(lsn, table, key)`` for streamed changes and
``snapshot_event_id`` (content-based) for snapshot reads. The key is the replica identity
key columns (the primary key by default); a table without one is keyed by the whole row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from insightloop.cdc.changes import (
    CapturedChange,
    ChangeEvent,
    ChangeSource,
    Column,
    change_event_id,
    encode_event,
    snapshot_event_id,
)
from insightloop.cdc.pgoutput import UNCHANGED, Value
from insightloop.cdc.values import to_json


@dataclass(frozen=True)
class TableShape:
    schema: str
    table: str
    columns: tuple[Column, ...]
    type_oids: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def has_key(self) -> bool:
        return any(c.key for c in self.columns)

    def row(self, values: Sequence[Value], *, key_only: bool = False) -> tuple[dict[str, Any], list[str]]:
        """The JSON row of ``values`` and the names of unchanged (unsent TOAST) columns.

        ``key_only``: a 'K' tuple, whose non-key columns are placeholders: left out."""
        row: dict[str, Any] = {}
        unchanged: list[str] = []
        for column, oid, value in zip(self.columns, self.type_oids, values, strict=True):
            if key_only and not column.key:
                continue
            if value is UNCHANGED:
                unchanged.append(column.name)
            elif value is None:
                row[column.name] = None
            else:
                assert isinstance(value, bytes)
                row[column.name] = to_json(oid, value.decode())
        return row, unchanged

    def key(self, row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        if not self.has_key:
            return row
        return {c.name: row.get(c.name) for c in self.columns if c.key}


class Envelopes:
    """Builds the captured changes of one source database."""

    def __init__(self, source: str, db: str) -> None:
        self.source = source
        self.db = db

    def change(
        self,
        op: str,
        shape: TableShape,
        *,
        lsn: int,
        commit_ts_us: int,
        tx_id: int | None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        unchanged: list[str] | None = None,
        snapshot: str = "false",
    ) -> CapturedChange:
        event = ChangeEvent(
            op=op,
            source=ChangeSource(
                name=self.source,
                db=self.db,
                schema=shape.schema,
                table=shape.table,
                lsn=lsn,
                ts_ms=commit_ts_us // 1000,
                txId=tx_id,
                snapshot=snapshot,
            ),
            ts_ms=time.time_ns() // 1_000_000,
            before=before,
            after=after,
            columns=list(shape.columns),
            unchanged=unchanged or [],
        )
        if op == "r":
            assert after is not None
            event_id = snapshot_event_id(shape.name, shape.key(after), after)
        else:
            event_id = change_event_id(lsn, shape.name, shape.key(after if op in ("c", "u") else before))
        return CapturedChange(event_id, shape.name, op, lsn, commit_ts_us, encode_event(event))
