"""The pgoutput stream → log records: one ``ChangeBatch`` per transaction, or per chunk of a
large one (so memory stays bounded however big a transaction is).

``Assembler.feed`` takes each decoded message with its WAL position (the XLogData start,
which for a change is the LSN of its WAL record) and returns a ``Chunk`` when one is ready.
A chunk that ends a transaction carries the commit's end LSN: once it (and everything
before it) is durable, the slot may be confirmed up to there. A chunk in the middle of a
transaction is never confirmable: after a crash the whole transaction is sent again, with
the same LSNs and so the same event ids.

``known`` holds the columns seen per table as of the last commit fed (the reader saves it
with the confirmed LSN). A Relation message naming a column not in it, for a table in it,
asks ``fills`` for that column's ``ColumnFill`` at the LSN of the change the message
precedes (a Relation message has no WAL position of its own), carried by its chunk. A
table not in ``known`` (the first Relation after an upgrade, or a table added to the
publication later) only records its columns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from insightloop.cdc.changes import FORMAT_VERSION, CapturedChange, ChangeBatch, Column, ColumnFill
from insightloop.cdc.envelope import Envelopes, TableShape
from insightloop.cdc.pgoutput import Begin, Commit, Delete, Insert, Message, Relation, Truncate, Update

#: (type OID, typmod) → the type as ``format_type`` prints it.
TypeNamer = Callable[[int, int], str]
#: (relation OID, shape, new column names, LSN) → the fills of those columns.
FillLookup = Callable[[int, TableShape, list[str], int], list[ColumnFill]]

#: Changes per log record within one large transaction.
CHUNK_CHANGES = 5000


@dataclass
class Chunk:
    changes: list[CapturedChange]
    #: The commit's end LSN when this chunk ends its transaction; None mid-transaction.
    commit_end_lsn: int | None
    commit_ts_us: int
    fills: list[ColumnFill] = field(default_factory=list)

    def batch(self, source: str) -> ChangeBatch:
        return ChangeBatch(FORMAT_VERSION, source, time.time_ns() // 1000, self.changes, [], self.fills)


@dataclass
class _Transaction:
    xid: int
    commit_ts_us: int
    changes: list[CapturedChange] = field(default_factory=list)
    fills: list[ColumnFill] = field(default_factory=list)
    #: Columns per table as this transaction's Relation messages show them.
    columns: dict[str, list[str]] = field(default_factory=dict)
    #: Relation OID → (shape, new columns) whose fills wait for the next change's LSN.
    awaiting: dict[int, tuple[TableShape, list[str]]] = field(default_factory=dict)


class UnknownRelationError(Exception):
    """A change names a relation the stream has not described (protocol violation)."""


class Assembler:
    def __init__(
        self,
        envelopes: Envelopes,
        type_name: TypeNamer,
        chunk_changes: int = CHUNK_CHANGES,
        *,
        known: dict[str, list[str]] | None = None,
        fills: FillLookup | None = None,
    ) -> None:
        self.envelopes = envelopes
        self.type_name = type_name
        self.chunk_changes = chunk_changes
        #: Columns seen per table as of the last commit fed (updated in place).
        self.known = known if known is not None else {}
        self.fills = fills
        self.relations: dict[int, TableShape] = {}
        self._tx: _Transaction | None = None

    @property
    def in_transaction(self) -> bool:
        return self._tx is not None

    def reset(self) -> None:
        """Forget a transaction in progress (the connection was lost: it will be resent)."""
        self._tx = None

    def feed(self, message: Message, lsn: int) -> Chunk | None:
        if isinstance(message, Begin):
            self._tx = _Transaction(message.xid, message.commit_ts_us)
            return None
        if isinstance(message, Relation):
            shape = self.relations[message.oid] = self._shape(message)
            self._columns(message.oid, shape)
            return None
        tx = self._tx
        if isinstance(message, Commit):
            self._tx = None
            if tx is None:
                return Chunk([], message.end_lsn, message.commit_ts_us)
            self.known.update(tx.columns)
            return Chunk(tx.changes, message.end_lsn, message.commit_ts_us, tx.fills)
        if tx is None or not isinstance(message, Insert | Update | Delete | Truncate):
            return None
        if tx.awaiting:
            self._fill(message, lsn, tx)
        tx.changes.extend(self._changes(message, lsn, tx))
        if len(tx.changes) >= self.chunk_changes:
            chunk = Chunk(tx.changes, None, tx.commit_ts_us, tx.fills)
            tx.changes, tx.fills = [], []
            return chunk
        return None

    def _columns(self, oid: int, shape: TableShape) -> None:
        """Records the columns of ``shape``; new ones await their fills."""
        names = [c.name for c in shape.columns]
        tx = self._tx
        if tx is None:  # not sent by pgoutput outside a transaction; nothing to fill then
            self.known[shape.name] = names
            return
        seen = tx.columns.get(shape.name, self.known.get(shape.name))
        tx.columns[shape.name] = names
        if seen is None or self.fills is None:
            return
        new = [name for name in names if name not in seen]
        if new:
            tx.awaiting[oid] = (shape, new)

    def _fill(self, message: Insert | Update | Delete | Truncate, lsn: int, tx: _Transaction) -> None:
        assert self.fills is not None
        for oid in message.oids if isinstance(message, Truncate) else [message.oid]:
            waiting = tx.awaiting.pop(oid, None)
            if waiting is not None:
                tx.fills.extend(self.fills(oid, waiting[0], waiting[1], lsn))

    def _shape(self, rel: Relation) -> TableShape:
        columns = tuple(Column(c.name, self.type_name(c.type_oid, c.typmod), key=c.key) for c in rel.columns)
        return TableShape(rel.schema, rel.table, columns, tuple(c.type_oid for c in rel.columns))

    def _relation(self, oid: int) -> TableShape:
        try:
            return self.relations[oid]
        except KeyError:
            raise UnknownRelationError(f"change for relation {oid} before its Relation message") from None

    def _changes(
        self, message: Insert | Update | Delete | Truncate, lsn: int, tx: _Transaction
    ) -> list[CapturedChange]:
        ts, xid = tx.commit_ts_us, tx.xid
        make = self.envelopes.change
        if isinstance(message, Truncate):
            return [
                make("t", self._relation(oid), lsn=lsn, commit_ts_us=ts, tx_id=xid) for oid in message.oids
            ]
        shape = self._relation(message.oid)
        if isinstance(message, Insert):
            after, _ = shape.row(message.new)
            return [make("c", shape, lsn=lsn, commit_ts_us=ts, tx_id=xid, after=after)]
        if isinstance(message, Update):
            after, unchanged = shape.row(message.new)
            before = None
            if message.old is not None:
                before, _ = shape.row(message.old, key_only=message.old_is_key)
            return [
                make(
                    "u",
                    shape,
                    lsn=lsn,
                    commit_ts_us=ts,
                    tx_id=xid,
                    before=before,
                    after=after,
                    unchanged=unchanged,
                )
            ]
        before, _ = shape.row(message.old, key_only=message.old_is_key)
        return [make("d", shape, lsn=lsn, commit_ts_us=ts, tx_id=xid, before=before)]
