"""Columns added with a stored default → ``changes.ColumnFill`` (see ``changes``).

PostgreSQL 11+ keeps the default of ``ADD COLUMN … DEFAULT <constant>`` in the catalog
(``pg_attribute.atthasmissing``/``attmissingval``) instead of writing every row, so logical
replication streams nothing for the rows already there. When the stream first shows a new
column, ``column_fills`` reads that missing value, converted like a streamed value of the
column's type. A new column with a default but no missing value had its default written by
a table rewrite (a volatile default such as ``clock_timestamp()``; ``now()`` is stable, so
a missing value), or lost it to a rewrite since the ALTER (the catalog is read when the
stream gets there, not as of the ALTER): not streamed either, so that is logged as a
warning naming the remedy (a new snapshot).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
import structlog

from insightloop.cdc.changes import ColumnFill
from insightloop.cdc.envelope import TableShape
from insightloop.cdc.source import SqlConnection
from insightloop.cdc.values import to_json

_log = structlog.get_logger(__name__)


def column_fills(
    conn: SqlConnection, oid: int, shape: TableShape, new: Sequence[str], lsn: int, slot: str
) -> list[ColumnFill]:
    """The fills of the ``new`` columns of ``shape`` (relation ``oid``) at ``lsn``."""
    try:
        rows = conn.execute(
            """
            SELECT attname, atthasmissing, attmissingval::text, atthasdef
            FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped
            """,
            (oid,),
        ).fetchall()
    except psycopg.errors.InsufficientPrivilege as exc:
        _log.warning(
            "cannot read the catalog's stored defaults of added columns: rows older than them "
            "read null in the lake",
            table=shape.name,
            columns=list(new),
            error=str(exc).strip(),
        )
        return []
    catalog = {str(r[0]): r for r in rows}
    oids = dict(zip((c.name for c in shape.columns), shape.type_oids, strict=True))
    types = {c.name: c.type for c in shape.columns}
    fills: list[ColumnFill] = []
    for name in new:
        found = catalog.get(name)
        if found is None:
            continue  # dropped (or renamed) since: its later changes do not carry it
        _, has_missing, missing, has_default = found
        if has_missing and missing is not None:
            text = missing_element(str(missing))
            value = None if text is None else to_json(oids[name], text)
            if value is not None:
                fills.append(ColumnFill(shape.name, name, types[name], value, lsn))
        elif has_default:
            _log.warning(
                "column added with a default but no stored (missing) value: PostgreSQL wrote it "
                "by rewriting the table (a volatile default such as clock_timestamp(), or a "
                "rewrite since, e.g. VACUUM FULL or ALTER COLUMN TYPE), which logical replication "
                "does not stream: rows older than the column may read null in the lake. Remedy: "
                "stop the reader, drop its slot (SELECT pg_drop_replication_slot("
                f"'{slot}')) and start `insightloop cdc reader` again: it snapshots every table anew",
                table=shape.name,
                column=name,
            )
    return fills


def missing_element(text: str) -> str | None:
    """The single element of ``attmissingval::text`` (a one-element array of the column's
    type, ``{gold}`` or ``{"a, b"}``), as the type's own text output; None for NULL."""
    body = text[1:-1] if text.startswith("{") and text.endswith("}") else text
    if not body.startswith('"'):
        return None if body.upper() == "NULL" else body
    out: list[str] = []
    escaped = False
    for char in body[1:-1]:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)
