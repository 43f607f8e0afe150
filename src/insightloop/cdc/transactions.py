"""The pgoutput stream → log records: one ``ChangeBatch`` per transaction, or per chunk of a
large one (so memory stays bounded however big a transaction is).

``Assembler.feed`` takes each decoded message with its WAL position (the XLogData start,
which for a change is the LSN of its WAL record) and returns a ``Chunk`` when one is ready.
A chunk that ends a transaction carries the commit's end LSN: once it (and everything
before it) is durable, the slot may be confirmed up to there. A chunk in the middle of a
transaction is never confirmable: after a crash the whole transaction is sent again, with
the same LSNs and so the same event ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from insightloop.cdc.changes import FORMAT_VERSION, CapturedChange, ChangeBatch, Column
from insightloop.cdc.envelope import Envelopes, TableShape
from insightloop.cdc.pgoutput import Begin, Commit, Delete, Insert, Message, Relation, Truncate, Update

#: (type OID, typmod) → the type as ``format_type`` prints it.
TypeNamer = Callable[[int, int], str]

#: Changes per log record within one large transaction.
CHUNK_CHANGES = 5000


@dataclass
class Chunk:
    changes: list[CapturedChange]
    #: The commit's end LSN when this chunk ends its transaction; None mid-transaction.
    commit_end_lsn: int | None
    commit_ts_us: int

    def batch(self, source: str) -> ChangeBatch:
        return ChangeBatch(FORMAT_VERSION, source, time.time_ns() // 1000, self.changes)


@dataclass
class _Transaction:
    xid: int
    commit_ts_us: int
    changes: list[CapturedChange] = field(default_factory=list)


class UnknownRelationError(Exception):
    """A change names a relation the stream has not described (protocol violation)."""


class Assembler:
    def __init__(
        self, envelopes: Envelopes, type_name: TypeNamer, chunk_changes: int = CHUNK_CHANGES
    ) -> None:
        self.envelopes = envelopes
        self.type_name = type_name
        self.chunk_changes = chunk_changes
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
            self.relations[message.oid] = self._shape(message)
            return None
        tx = self._tx
        if isinstance(message, Commit):
            self._tx = None
            changes = tx.changes if tx is not None else []
            return Chunk(changes, message.end_lsn, message.commit_ts_us)
        if tx is None or not isinstance(message, Insert | Update | Delete | Truncate):
            return None
        tx.changes.extend(self._changes(message, lsn, tx))
        if len(tx.changes) >= self.chunk_changes:
            chunk = Chunk(tx.changes, None, tx.commit_ts_us)
            tx.changes = []
            return chunk
        return None

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
