"""The wire contract between the CDC reader and the processor (neither imports the other).

One change is a Debezium-shaped envelope (``ChangeEvent``: ``op`` c/u/d/r/t, ``before``,
``after``, ``source`` with lsn, txId, ts_ms, schema and table), so Debezium Server or AWS DMS
can feed the same processor in production. Values are JSON: integers, floats, booleans and
strings as themselves; ``numeric`` as a decimal string; dates and times as ISO-8601 strings
(timestamps with time zone in UTC); ``bytea`` as base64; arrays and json/jsonb as JSON.
``columns`` gives each column's PostgreSQL type (from the Relation message) and whether it
is part of the primary key, so the processor can evolve tables without asking the database.

``unchanged`` names columns of an update whose value PostgreSQL did not send (an unchanged
TOASTed value): absent from ``after``, and the earlier value stands.

One log record (``ChangeBatch``) holds the changes of one transaction, or of one chunk of a
large transaction or of the snapshot, in commit order. ``event_id`` is derived from (LSN,
table, primary key), so a redelivered change deduplicates.

``column_fills`` (a ``ChangeBatch`` field, added at its end): PostgreSQL 11+ adds a column
with a constant default (``ALTER TABLE … ADD COLUMN tier text DEFAULT 'gold'``) without
writing the rows: existing rows read the default from the catalog (``atthasmissing``), and
nothing is streamed for them. When a Relation message shows a column the reader had not
seen for that table, the reader looks up that missing value and sends a ``ColumnFill``:
every live row of ``table`` whose last change is older than ``lsn`` (the LSN of the first
change streamed with the new column) and whose ``column`` is null takes ``value`` (JSON, as
in ``after``). It applies after the changes of its batch; rows changed at or after ``lsn``
carry the column themselves, so a later explicit NULL stays NULL, and applying a fill twice
changes nothing. It is not a change: no history row. A column whose default was written by a
table rewrite (a volatile default such as ``clock_timestamp()``) has no missing value and gets
no fill (the reader logs a warning).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import orjson

FORMAT_VERSION = 1

#: ``op`` values (Debezium's): create, update, delete, read (snapshot), truncate.
OPS = ("c", "u", "d", "r", "t")


class Column(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    #: The PostgreSQL type as ``format_type`` prints it: ``bigint``, ``numeric(12,2)``, ``text``…
    type: str
    key: bool = False
    optional: bool = True


class ChangeSource(msgspec.Struct, frozen=True):
    """Debezium's ``source`` block (PostgreSQL connector)."""

    #: The configured CDC source name (``cdc.source``), Debezium's ``name``.
    name: str
    db: str
    schema: str
    table: str
    #: WAL position of the change (for ``r``: where the slot's decoding started, its
    #: restart point at creation: at or before the consistent point, and before every
    #: change streamed after the snapshot, in-flight transactions' included).
    lsn: int
    #: Commit time of the transaction (for ``r``: when the snapshot began), ms since epoch.
    ts_ms: int
    txId: int | None = None  # Debezium's field name
    #: "true" for snapshot rows, "last" for the last one, "false" for streamed changes.
    snapshot: str = "false"
    version: str = "insightloop-cdc/1"
    connector: str = "postgresql"


class ChangeEvent(msgspec.Struct, frozen=True, omit_defaults=True):
    """One change, Debezium's envelope payload."""

    op: str
    source: ChangeSource
    #: When the reader produced it, ms since epoch.
    ts_ms: int
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    columns: list[Column] = msgspec.field(default_factory=list)
    unchanged: list[str] = msgspec.field(default_factory=list)


class CapturedChange(msgspec.Struct, array_like=True, frozen=True):
    """One change as carried in a log record: its id and routing fields beside the exact
    envelope bytes (what raw keeps)."""

    event_id: str
    #: ``<schema>.<table>``
    table: str
    op: str
    lsn: int
    commit_ts_us: int
    payload: bytes


class SnapshotDone(msgspec.Struct, array_like=True, frozen=True):
    """A table's snapshot is complete: every row it holds was sent as an ``r`` change with
    ``lsn`` (the slot's restart point, as the reads). A current-state row of ``table`` whose last
    change is older than ``lsn`` was not in the source then (deleted while the slot was
    missing, say) and is deleted downstream."""

    #: ``<schema>.<table>``
    table: str
    lsn: int
    rows: int


class ColumnFill(msgspec.Struct, array_like=True, frozen=True):
    """A column added with a stored default (PostgreSQL's missing value): live rows of
    ``table`` older than ``lsn`` whose ``column`` is null take ``value`` (see above)."""

    #: ``<schema>.<table>``
    table: str
    column: str
    #: The column's PostgreSQL type, as ``Column.type``.
    type: str
    #: The JSON value, converted as a streamed value of the type.
    value: Any
    lsn: int


class ChangeBatch(msgspec.Struct, array_like=True, frozen=True):
    """One log record. ``snapshot_done`` marks and ``column_fills`` apply after this batch's
    ``changes``."""

    version: int
    source: str
    read_at_us: int
    changes: list[CapturedChange]
    snapshot_done: list[SnapshotDone] = msgspec.field(default_factory=list)
    column_fills: list[ColumnFill] = msgspec.field(default_factory=list)


def change_event_id(lsn: int, table: str, key: dict[str, Any] | None) -> str:
    """A stable id for one streamed change: the same (LSN, table, primary key) always gives
    the same id, so a change redelivered by the slot deduplicates."""
    digest = hashlib.blake2b(orjson.dumps([lsn, table, key], option=orjson.OPT_SORT_KEYS), digest_size=16)
    return digest.hexdigest()


def snapshot_event_id(table: str, key: dict[str, Any] | None, row: dict[str, Any]) -> str:
    """The id of a snapshot read (``r``): from the row's content, not the LSN, so a snapshot
    repeated after a crash or a recreated slot gives the same id for an unchanged row (no
    duplicate history rows) and a new id for a row that changed meanwhile."""
    body = orjson.dumps(["r", table, key, row], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def encode_event(event: ChangeEvent) -> bytes:
    return msgspec.json.encode(event)


def decode_event(data: bytes) -> ChangeEvent:
    """Raises ``msgspec.DecodeError``/``ValidationError`` for bytes that are not one."""
    return _event_decoder.decode(data)


_event_decoder = msgspec.json.Decoder(ChangeEvent)
_encoder = msgspec.msgpack.Encoder()
_batch_decoder = msgspec.msgpack.Decoder(ChangeBatch)


def encode_batch(batch: ChangeBatch) -> bytes:
    return _encoder.encode(batch)


def decode_batch(data: bytes) -> ChangeBatch:
    return _batch_decoder.decode(data)
