"""Helpers for the CDC lake tests: a model of a PostgreSQL source that emits change
envelopes exactly as the CDC reader does (``cdc.changes``) and keeps its own rows (the
truth the lake tables are compared with), log records of them, and the lake's live rows."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from insightloop.cdc.changes import (
    FORMAT_VERSION,
    CapturedChange,
    ChangeBatch,
    ChangeEvent,
    ChangeSource,
    Column,
    ColumnFill,
    SnapshotDone,
    change_event_id,
    encode_batch,
    encode_event,
    snapshot_event_id,
)
from insightloop.config import Config
from insightloop.log import Log
from insightloop.processor.cdc.metrics import CdcMetrics
from insightloop.processor.cdc.runner import build_cdc_processor
from insightloop.processor.runner import Processor

BASE_TS_MS = 1_764_151_200_000  # 2025-11-26T10:00:00Z
SOURCE = "app"


@dataclass
class SourceTable:
    name: str  # schema.table
    columns: list[Column]
    rows: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)

    @property
    def key(self) -> list[str]:
        return [c.name for c in self.columns if c.key]

    def key_of(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[k] for k in self.key)


class Source:
    """A PostgreSQL stand-in: applies changes to its rows and emits their envelopes."""

    def __init__(self) -> None:
        self.tables: dict[str, SourceTable] = {}
        self._lsn = itertools.count(1000, 8)
        self._tx = itertools.count(500)
        self.ts_ms = BASE_TS_MS
        self.pending: list[CapturedChange] = []
        self.fills: list[ColumnFill] = []
        #: Table → (column, type, value) whose fills wait for the table's next change's LSN.
        self._awaiting: dict[str, list[tuple[str, str, Any]]] = {}

    def table(self, name: str, columns: Sequence[tuple[str, str] | tuple[str, str, bool]]) -> SourceTable:
        cols = [Column(c[0], c[1], key=bool(c[2]) if len(c) > 2 else False) for c in columns]  # type: ignore[misc]
        self.tables[name] = SourceTable(name, cols)
        return self.tables[name]

    # -- changes -------------------------------------------------------------------

    def insert(self, name: str, row: dict[str, Any]) -> CapturedChange:
        table = self.tables[name]
        full = {c.name: row.get(c.name) for c in table.columns}
        table.rows[table.key_of(full)] = full
        return self._emit(table, "c", None, full)

    def update(
        self, name: str, key: tuple[Any, ...], changes: dict[str, Any], unchanged: Sequence[str] = ()
    ) -> CapturedChange:
        table = self.tables[name]
        row = table.rows[key]
        row.update(changes)
        after = {k: v for k, v in row.items() if k not in unchanged}
        new_key = table.key_of(row)
        before = None
        if new_key != key:
            del table.rows[key]
            table.rows[new_key] = row
            before = dict(zip(table.key, key, strict=True))
        return self._emit(table, "u", before, after, unchanged)

    def delete(self, name: str, key: tuple[Any, ...]) -> CapturedChange:
        table = self.tables[name]
        del table.rows[key]
        return self._emit(table, "d", dict(zip(table.key, key, strict=True)), None)

    def truncate(self, name: str) -> CapturedChange:
        table = self.tables[name]
        table.rows.clear()
        return self._emit(table, "t", None, None)

    def alter(self, name: str, column: str, pg_type: str) -> None:
        """ALTER TABLE … ADD COLUMN / ALTER COLUMN TYPE (later changes declare it)."""
        table = self.tables[name]
        for i, c in enumerate(table.columns):
            if c.name == column:
                table.columns[i] = Column(column, pg_type, key=c.key)
                return
        table.columns.append(Column(column, pg_type))
        for row in table.rows.values():
            row[column] = None

    def add_column_with_default(self, name: str, column: str, pg_type: str, value: Any) -> None:
        """ALTER TABLE … ADD COLUMN … DEFAULT (a stored missing value): the rows there take
        ``value``, and nothing is streamed for them; the reader's ``ColumnFill`` goes with
        the table's next change, at its LSN."""
        table = self.tables[name]
        table.columns.append(Column(column, pg_type))
        for row in table.rows.values():
            row[column] = value
        self._awaiting.setdefault(name, []).append((column, pg_type, value))

    def snapshot(self, name: str) -> tuple[list[CapturedChange], SnapshotDone]:
        """A consistent snapshot of ``name``: one ``r`` per row, at a new consistent point."""
        table = self.tables[name]
        lsn = next(self._lsn)
        changes = []
        for row in table.rows.values():
            key = dict(zip(table.key, table.key_of(row), strict=True))
            event = self._event(table, "r", None, dict(row), (), lsn, snapshot="true")
            changes.append(
                CapturedChange(
                    snapshot_event_id(table.name, key, row),
                    table.name,
                    "r",
                    lsn,
                    self.ts_ms * 1000,
                    encode_event(event),
                )
            )
        return changes, SnapshotDone(table.name, lsn, len(changes))

    def _emit(
        self,
        table: SourceTable,
        op: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        unchanged: Sequence[str] = (),
    ) -> CapturedChange:
        lsn = next(self._lsn)
        self.ts_ms += 3
        for column, pg_type, value in self._awaiting.pop(table.name, []):
            self.fills.append(ColumnFill(table.name, column, pg_type, value, lsn))
        event = self._event(table, op, before, after, unchanged, lsn)
        image = after if after is not None else before
        key = {k: image[k] for k in table.key} if image else None
        change = CapturedChange(
            change_event_id(lsn, table.name, key), table.name, op, lsn, self.ts_ms * 1000, encode_event(event)
        )
        self.pending.append(change)
        return change

    def _event(
        self,
        table: SourceTable,
        op: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        unchanged: Sequence[str],
        lsn: int,
        snapshot: str = "false",
    ) -> ChangeEvent:
        schema, _, name = table.name.partition(".")
        source = ChangeSource(SOURCE, "app", schema, name, lsn, self.ts_ms, next(self._tx), snapshot)
        return ChangeEvent(op, source, self.ts_ms, before, after, list(table.columns), list(unchanged))

    def take(self) -> list[CapturedChange]:
        out, self.pending = self.pending, []
        return out

    def take_fills(self) -> list[ColumnFill]:
        out, self.fills = self.fills, []
        return out


def record(
    changes: Sequence[CapturedChange], marks: Sequence[SnapshotDone] = (), fills: Sequence[ColumnFill] = ()
) -> bytes:
    return encode_batch(
        ChangeBatch(FORMAT_VERSION, SOURCE, BASE_TS_MS * 1000, list(changes), list(marks), list(fills))
    )


def config_for(tmp_path: Path) -> Config:
    return Config(data_dir=str(tmp_path / "data"))


def processor(config: Config, log: Log, catalog: Catalog, max_events: int = 500) -> Processor:
    proc = build_cdc_processor(config, log, catalog, CdcMetrics())
    proc.limits = type(proc.limits)(max_events, 0.01, 0.001)
    return proc


def drain(proc: Processor) -> None:
    while proc.step():
        pass


# -- reading the lake back --------------------------------------------------------------


def plain(value: Any) -> Any:
    """A lake value in the source model's form (envelope JSON values)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def model_value(pg_type: str, value: Any) -> Any:
    if pg_type in ("jsonb", "json") or pg_type.endswith("[]"):
        return None if value is None else orjson.dumps(value).decode()
    return value


def live_rows(catalog: Catalog, identifier: str, columns: Iterable[str]) -> list[dict[str, Any]]:
    """Live rows of a current-state table (source columns only), sorted."""
    try:
        data = catalog.load_table(identifier).scan().to_arrow()
    except NoSuchTableError:
        return []
    data = data.filter(pc.invert(data.column("_deleted")))
    names = list(columns)
    rows = [{n: plain(r.get(n)) for n in names} for r in data.to_pylist()]
    return sorted(rows, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))


def expected_rows(table: SourceTable) -> list[dict[str, Any]]:
    types = {c.name: c.type for c in table.columns}
    rows = [{n: model_value(types[n], r.get(n)) for n in types} for r in table.rows.values()]
    return sorted(rows, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))


def history(catalog: Catalog, identifier: str) -> list[dict[str, Any]]:
    try:
        return list(catalog.load_table(identifier).scan().to_arrow().to_pylist())
    except NoSuchTableError:
        return []


def table_rows(catalog: Catalog, identifier: str) -> list[dict[str, Any]]:
    return history(catalog, identifier)
