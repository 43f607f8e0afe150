"""Decoding of the ``pgoutput`` logical replication protocol, version 1 (PostgreSQL ≥ 10).

Only what protocol version 1 sends with ``binary`` off: Begin, Commit, Origin, Relation,
Type, Insert, Update, Delete, Truncate (and logical Messages, which are skipped). Column
values arrive in PostgreSQL's text format, as ``bytes``; ``UNCHANGED`` stands for an
unchanged TOASTed value the server did not send, None for SQL NULL. Layouts follow
"Logical Replication Message Formats" in the PostgreSQL documentation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

#: PostgreSQL's epoch (2000-01-01) in microseconds after the Unix epoch.
PG_EPOCH_US: Final = 946_684_800_000_000


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


#: A TOASTed value left unchanged by an update: the server sent no value ('u').
UNCHANGED: Final = _Unchanged()

Value = bytes | None | _Unchanged


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    commit_ts_us: int  # Unix epoch, microseconds
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_ts_us: int


@dataclass(frozen=True, slots=True)
class RelationColumn:
    name: str
    type_oid: int
    typmod: int
    key: bool


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    schema: str
    table: str
    replica_identity: str
    columns: tuple[RelationColumn, ...]


@dataclass(frozen=True, slots=True)
class Insert:
    oid: int
    new: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Update:
    oid: int
    #: The old row: its key columns ('K', key changed) or every column ('O', replica
    #: identity full); None when neither was sent.
    old: tuple[Value, ...] | None
    old_is_key: bool
    new: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Delete:
    oid: int
    old: tuple[Value, ...]
    old_is_key: bool


@dataclass(frozen=True, slots=True)
class Truncate:
    oids: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True, slots=True)
class Other:
    """A message the reader has no use for (Origin, Type, logical Message)."""

    tag: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Other

_Q = struct.Struct(">Q")
_I = struct.Struct(">I")
_H = struct.Struct(">H")
_BEGIN = struct.Struct(">QqI")
_COMMIT = struct.Struct(">BQQq")


class ProtocolError(ValueError):
    """Bytes that are not a pgoutput v1 message."""


def decode(data: bytes) -> Message:
    """One pgoutput message (the payload of one XLogData)."""
    if not data:
        raise ProtocolError("empty message")
    tag = chr(data[0])
    try:
        if tag == "B":
            lsn, ts, xid = _BEGIN.unpack_from(data, 1)
            return Begin(lsn, ts + PG_EPOCH_US, xid)
        if tag == "C":
            _, commit_lsn, end_lsn, ts = _COMMIT.unpack_from(data, 1)
            return Commit(commit_lsn, end_lsn, ts + PG_EPOCH_US)
        if tag == "R":
            return _relation(data)
        if tag == "I":
            oid = _I.unpack_from(data, 1)[0]
            _expect(data, 5, "N")
            new, _ = _tuple(data, 6)
            return Insert(oid, new)
        if tag == "U":
            return _update(data)
        if tag == "D":
            oid = _I.unpack_from(data, 1)[0]
            kind = chr(data[5])
            if kind not in "KO":
                raise ProtocolError(f"delete: unexpected tuple kind {kind!r}")
            old, _ = _tuple(data, 6)
            return Delete(oid, old, kind == "K")
        if tag == "T":
            count, options = struct.unpack_from(">IB", data, 1)
            oids = struct.unpack_from(f">{count}I", data, 6)
            return Truncate(tuple(oids), bool(options & 1), bool(options & 2))
        if tag in "OYM":
            return Other(tag)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"truncated or malformed {tag!r} message: {exc}") from exc
    raise ProtocolError(f"unknown message type {tag!r}")


def _expect(data: bytes, at: int, kind: str) -> None:
    if chr(data[at]) != kind:
        raise ProtocolError(f"expected tuple kind {kind!r} at {at}, got {chr(data[at])!r}")


def _string(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(0, at)
    return data[at:end].decode(), end + 1


def _relation(data: bytes) -> Relation:
    oid = _I.unpack_from(data, 1)[0]
    schema, at = _string(data, 5)
    table, at = _string(data, at)
    identity = chr(data[at])
    count = _H.unpack_from(data, at + 1)[0]
    at += 3
    columns = []
    for _ in range(count):
        flags = data[at]
        name, at = _string(data, at + 1)
        type_oid, typmod = struct.unpack_from(">Ii", data, at)
        at += 8
        columns.append(RelationColumn(name, type_oid, typmod, bool(flags & 1)))
    return Relation(oid, schema, table, identity, tuple(columns))


def _update(data: bytes) -> Update:
    oid = _I.unpack_from(data, 1)[0]
    first = chr(data[5])
    old: tuple[Value, ...] | None = None
    at = 5
    if first in "KO":
        old, at = _tuple(data, 6)
    _expect(data, at, "N")
    new, _ = _tuple(data, at + 1)
    return Update(oid, old, first == "K", new)


def _tuple(data: bytes, at: int) -> tuple[tuple[Value, ...], int]:
    count = _H.unpack_from(data, at)[0]
    at += 2
    values: list[Value] = []
    for _ in range(count):
        kind = data[at]
        at += 1
        if kind == 0x74:  # 't'
            size = _I.unpack_from(data, at)[0]
            values.append(data[at + 4 : at + 4 + size])
            at += 4 + size
        elif kind == 0x6E:  # 'n'
            values.append(None)
        elif kind == 0x75:  # 'u'
            values.append(UNCHANGED)
        else:
            raise ProtocolError(f"unsupported tuple value kind {chr(kind)!r} (binary mode is not used)")
    return tuple(values), at
