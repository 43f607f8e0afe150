"""Reading ``quarantine.sdk_events`` through the warehouse: groups of rows, and rows one by one.

Everything here runs on one warehouse connection, so it reads one pinned snapshot of the
table (``open_quarantine``). Rows written before the ``contract``/``violations`` columns were
added in place read null there; on a table that never got those columns they read null too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
from pyiceberg.catalog import Catalog

from insightloop.config import Config
from insightloop.quarantine.selection import Selection
from insightloop.warehouse import attach_catalog, open_warehouse

#: ``insightloop.processor.cleaned.tables.QUARANTINE``, named again here so that reading the
#: quarantine does not import stage 2 (half a second; a test keeps the two equal).
QUARANTINE = "quarantine.sdk_events"

#: The temporary view every query here reads: the quarantine table with all its columns.
VIEW = "quarantined"
_COLUMNS = (
    "event_id", "source", "stream", "kind", "field", "reason", "payload", "received_at",
    "quarantined_at", "origin", "ingest_seq", "contract", "violations",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Group:
    """Quarantined rows alike in source, stream, kind, contract and reason (its first line)."""

    source: str | None
    stream: str | None
    kind: str | None
    contract: str | None
    reason: str
    rows: int
    first_received: dt.datetime | None
    last_received: dt.datetime | None


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    """One quarantined event, as stored."""

    event_id: str | None
    source: str | None
    stream: str | None
    kind: str | None
    field: str | None
    reason: str | None
    payload: bytes | None
    received_at: dt.datetime | None
    quarantined_at: dt.datetime | None
    origin: str | None
    ingest_seq: int | None
    contract: str | None
    #: JSON text: ``[{"pointer", "keyword", "message"}, …]``.
    violations: str | None


@contextmanager
def open_quarantine(
    config: Config, catalog: Catalog | None = None
) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A warehouse connection with the ``quarantined`` view over the quarantine table pinned
    to its current snapshot; None when there is no quarantine table (nothing quarantined yet).
    ``catalog``: the lake's catalog when the caller has it open already."""
    tables = [QUARANTINE]
    opened = open_warehouse(config, tables) if catalog is None else attach_catalog(catalog, tables)
    with opened as warehouse:
        if QUARANTINE not in warehouse.pins:
            yield None
            return
        con = warehouse.con
        schema, name = QUARANTINE.split(".")
        present = {
            str(row[0])
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [schema, name],
            ).fetchall()
        }
        columns = ", ".join(c if c in present else f"CAST(NULL AS VARCHAR) AS {c}" for c in _COLUMNS)
        con.execute(f"CREATE TEMP VIEW {VIEW} AS SELECT {columns} FROM {QUARANTINE}")
        yield con


def count(con: duckdb.DuckDBPyConnection, selection: Selection) -> int:
    """How many quarantined rows ``selection`` picks."""
    where, params = selection.sql()
    row = con.execute(f"SELECT count(*) FROM {VIEW} WHERE {where}", params).fetchone()
    return int(row[0]) if row else 0


#: What a group of rows has in common: for contract violations the rules broken (where and
#: which keyword: the values in their messages would split a group per value), otherwise the
#: first line of the reason.
_REASON_LINE = """CASE WHEN violations IS NOT NULL AND violations <> '' THEN 'broke ' || array_to_string(
    list_transform(from_json(violations, '[{"pointer": "VARCHAR", "keyword": "VARCHAR"}]'),
                   lambda v: coalesce(nullif(v.pointer, ''), '/') || ' ' || v.keyword), ', ')
    ELSE coalesce(split_part(reason, chr(10), 1), '') END"""


def groups(con: duckdb.DuckDBPyConnection, selection: Selection) -> list[Group]:
    """``selection``'s rows grouped by source, stream, kind, contract and what went wrong (the
    rules broken, or the first line of the reason), the group with the newest row first."""
    where, params = selection.sql()
    rows = con.execute(
        f"""
        SELECT source, stream, kind, contract,
               {_REASON_LINE} AS reason_line,
               count(*) AS n, min(received_at), max(received_at)
        FROM {VIEW} WHERE {where}
        GROUP BY ALL
        ORDER BY max(received_at) DESC NULLS LAST, n DESC, source, kind, contract, reason_line
        """,
        params,
    ).fetchall()
    return [Group(s, st, k, c, str(r), int(n), first, last) for s, st, k, c, r, n, first, last in rows]


def rows(
    con: duckdb.DuckDBPyConnection, selection: Selection, default_limit: int | None = None
) -> list[QuarantinedRow]:
    """``selection``'s rows, newest first, at most ``selection.limit`` (or ``default_limit``)."""
    where, params = selection.sql()
    limit = selection.limit or default_limit
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    found = con.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM {VIEW} WHERE {where} "
        f"ORDER BY received_at DESC NULLS LAST, ingest_seq DESC, origin DESC{tail}",
        params,
    ).fetchall()
    return [_row(dict(zip(_COLUMNS, row, strict=True))) for row in found]


def _row(values: dict[str, Any]) -> QuarantinedRow:
    payload = values.pop("payload")
    return QuarantinedRow(payload=None if payload is None else bytes(payload), **values)
