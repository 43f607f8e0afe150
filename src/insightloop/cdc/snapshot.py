"""The initial consistent snapshot: every row of every published table, as of the slot's
consistent point.

The rows are read in a ``REPEATABLE READ`` transaction that imports the snapshot the slot
exported when it was created, so they are exactly the database as of the slot's start: the
stream then continues with the first transaction committed after it. Each row becomes an
``r`` change (lsn = the slot's restart point, before every streamed change: see
``reader._reads_lsn``; a content-based ``snapshot_event_id``), read
through a server-side cursor and appended in chunks; the last chunk of a table carries its
``SnapshotDone`` mark. Values are kept in PostgreSQL's text output, so they convert exactly
as the stream's text values do.

A table rewritten after the slot was created (``ALTER COLUMN … TYPE``, ``VACUUM FULL``,
``CLUSTER``, ``TRUNCATE``) reads as empty under the slot's snapshot: PostgreSQL's rewrites are
not MVCC-safe, and the stream carries none of the rows the rewrite copied. Each table is
therefore locked (``ACCESS SHARE``, the lock its read takes anyway) and checked before it is
read; a table rewritten since the slot's snapshot fails the snapshot with a
``TransientError``, and the reader starts it over with a new slot.

A snapshot cannot resume after a crash (the exported snapshot dies with its connection):
the reader drops the slot and snapshots again, and unchanged rows get the same ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.adapt
import structlog
from psycopg.abc import Buffer

from insightloop.cdc.changes import FORMAT_VERSION, CapturedChange, ChangeBatch, Column, SnapshotDone
from insightloop.cdc.envelope import Envelopes, TableShape
from insightloop.cdc.source import SqlConnection
from insightloop.errors import TransientError

_log = structlog.get_logger(__name__)

#: Rows per log record.
CHUNK_ROWS = 5000

#: A row as read: each value's text output, None for NULL.
Row = tuple[Any, ...]


@dataclass
class SnapshotCounts:
    tables: int = 0
    rows: int = 0


def table_shape(conn: SqlConnection, schema: str, table: str) -> TableShape:
    """Columns, types and key (the replica identity index, else the primary key) from the catalog."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid::int, a.attnotnull,
               COALESCE(a.attnum = ANY (i.indkey), false)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN LATERAL (
            SELECT x.indkey FROM pg_index x WHERE x.indrelid = c.oid
              AND ((c.relreplident = 'i' AND x.indisreplident) OR (c.relreplident = 'd' AND x.indisprimary))
            LIMIT 1
        ) i ON true
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, table),
    ).fetchall()
    columns = tuple(Column(r[0], r[1], key=bool(r[4]), optional=not r[3]) for r in rows)
    return TableShape(schema, table, columns, tuple(int(r[2]) for r in rows))


def take_snapshot(
    conn: SqlConnection,
    snapshot_name: str,
    tables: list[tuple[str, str]],
    envelopes: Envelopes,
    lsn: int,
    append: Callable[[ChangeBatch], None],
    table_done: Callable[[TableShape, int], None],
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> SnapshotCounts:
    """Read ``tables`` as of ``snapshot_name`` and ``append`` them as ``r`` changes; calls
    ``table_done(shape, rows)`` after each table's last batch is durable."""
    started_us = time.time_ns() // 1000
    counts = SnapshotCounts()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(
            psycopg.sql.SQL("SET TRANSACTION SNAPSHOT {}").format(psycopg.sql.Literal(snapshot_name))
        )
        for schema, table in tables:
            _not_rewritten(conn, schema, table)
            shape = table_shape(conn, schema, table)
            rows = _table(conn, shape, envelopes, lsn, started_us, append, chunk_rows)
            counts.tables += 1
            counts.rows += rows
            table_done(shape, rows)
            _log.info("snapshot of table done", table=shape.name, rows=rows)
    return counts


def _not_rewritten(conn: SqlConnection, schema: str, table: str) -> None:
    """Lock the table against rewrites until the snapshot ends, then make sure none came
    between the slot's snapshot and the lock: the storage the snapshot sees (``pg_class``
    as of the snapshot) must still be the table's current one (``pg_relation_filenode``)."""
    sql = psycopg.sql
    conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(sql.Identifier(schema, table)))
    row = conn.execute(
        "SELECT c.relfilenode, pg_relation_filenode(c.oid) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    if row is not None and row[0] != 0 and row[0] != row[1]:
        raise TransientError(
            f"{schema}.{table} was rewritten (ALTER COLUMN … TYPE, VACUUM FULL, CLUSTER or TRUNCATE) "
            "after the replication slot's snapshot, so its rows would read as none: the snapshot starts over"
        )


class _Text(psycopg.adapt.Loader):
    """Keeps a value as PostgreSQL's text output, the bytes pgoutput would send (a ``::text``
    cast is not always the same: booleans cast to 'true', pgoutput sends 't')."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def select_rows(conn: SqlConnection, shape: TableShape, chunk_rows: int = CHUNK_ROWS) -> Iterator[list[Row]]:
    """The rows of ``shape``'s table in chunks, each value as its text output (None: NULL);
    through a server-side cursor, so memory stays bounded."""
    sql = psycopg.sql
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(c.name) for c in shape.columns),
        sql.Identifier(shape.schema, shape.table),
    )
    with conn.cursor(name=f"insightloop_snapshot_{shape.table}"[:63]) as cursor:
        for oid in set(shape.type_oids):
            cursor.adapters.register_loader(oid, _Text)
        cursor.itersize = chunk_rows
        cursor.execute(query)
        while rows := cursor.fetchmany(chunk_rows):
            yield rows


def _table(
    conn: SqlConnection,
    shape: TableShape,
    envelopes: Envelopes,
    lsn: int,
    started_us: int,
    append: Callable[[ChangeBatch], None],
    chunk_rows: int,
) -> int:
    total = 0
    chunks = select_rows(conn, shape, chunk_rows)
    rows = next(chunks, [])
    while True:
        following = next(chunks, [])
        last = not following
        changes = [
            _read(shape, envelopes, row, lsn, started_us, last and i == len(rows) - 1)
            for i, row in enumerate(rows)
        ]
        total += len(changes)
        done = [SnapshotDone(shape.name, lsn, total)] if last else []
        append(ChangeBatch(FORMAT_VERSION, envelopes.source, time.time_ns() // 1000, changes, done))
        if last:
            return total
        rows = following


def _read(
    shape: TableShape, envelopes: Envelopes, row: Row, lsn: int, started_us: int, last: bool
) -> CapturedChange:
    after, _ = shape.row(row)
    return envelopes.change(
        "r",
        shape,
        lsn=lsn,
        commit_ts_us=started_us,
        tx_id=None,
        after=after,
        snapshot="last" if last else "true",
    )
