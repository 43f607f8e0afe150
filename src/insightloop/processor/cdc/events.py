"""Raw CDC rows → what stage 2 applies, per source table and in raw order: ``Change``s
(c/u/d/r and t), ``Vanish`` marks (a snapshot's ``SnapshotDone``) and ``Fill``s (a
``ColumnFill``: an added column's stored default), plus ``Problem``s for
rows that cannot be applied at all (rejected in stage 1, or an envelope that no longer
decodes). Decoding only: what a change does to a table is ``fold``'s business."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pyarrow as pa

from insightloop.cdc.changes import Column, decode_event
from insightloop.processor.cdc.raw_rows import (
    COLUMN_FILL_STREAM,
    SNAPSHOT_DONE_STREAM,
    decode_fill,
    decode_mark,
)
from insightloop.processor.raw_rows import REJECTED_STREAM
from insightloop.types import FailureKind

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Problem:
    """A change (or a value of one) that goes to ``quarantine.cdc_changes``."""

    seq: int
    event_id: str
    source: str
    table: str | None
    op: str | None
    lsn: int | None
    kind: str
    reason: str
    payload: bytes
    origin: str
    column: str | None = None


@dataclass(slots=True)
class Change:
    seq: int
    table: str
    event_id: str
    op: str
    lsn: int
    tx_id: int | None
    changed_at_us: int
    snapshot: bool
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    columns: list[Column]
    unchanged: frozenset[str]
    source: str
    payload: bytes
    origin: str

    def declared(self) -> list[tuple[str, str]]:
        """(column, PostgreSQL type) this change declares; columns of ``after`` it does not
        declare count as ``text``."""
        named = [(c.name, c.type) for c in self.columns]
        known = {name for name, _ in named}
        extra = [(name, "text") for name in (self.after or {}) if name not in known]
        return named + extra

    def problem(self, kind: str, reason: str, column: str | None = None) -> Problem:
        return Problem(
            self.seq, self.event_id, self.source, self.table, self.op, self.lsn, kind, reason,
            self.payload, self.origin, column,
        )  # fmt: skip


@dataclass(slots=True)
class Vanish:
    """Rows of the table whose last change is older than ``lsn`` are gone (``SnapshotDone``)."""

    seq: int
    lsn: int
    at_us: int


@dataclass(slots=True)
class Fill:
    """Live rows of the table older than ``lsn`` whose ``column`` is null take ``value``
    (a ``ColumnFill``)."""

    seq: int
    lsn: int
    column: str
    type: str
    value: Any
    event_id: str
    source: str
    table: str
    payload: bytes
    origin: str

    def problem(self, kind: str, reason: str) -> Problem:
        return Problem(
            self.seq, self.event_id, self.source, self.table, None, self.lsn, kind, reason,
            self.payload, self.origin, self.column,
        )  # fmt: skip


Event = Change | Vanish | Fill


@dataclass(slots=True)
class Parsed:
    by_table: dict[str, list[Event]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def parse(raw: pa.Table) -> Parsed:
    """The events of ``raw`` rows (``RAW_ARROW_SCHEMA``, ascending ``ingest_seq``)."""
    out = Parsed()
    cols = {name: raw.column(name).to_pylist() for name in (
        "event_id", "source", "stream", "schema_name", "event_time", "received_at", "payload",
        "rejection", "origin", "ingest_seq",
    )}  # fmt: skip
    for i in range(raw.num_rows):
        seq: int = cols["ingest_seq"][i]
        stream: str = cols["stream"][i]
        payload: bytes = cols["payload"][i]
        table: str | None = cols["schema_name"][i]
        source: str = cols["source"][i]
        origin: str = cols["origin"][i]
        event_id: str = cols["event_id"][i]
        if stream == REJECTED_STREAM or cols["rejection"][i] is not None:
            out.problems.append(
                _rejected(seq, event_id, source, table, payload, origin, cols["rejection"][i])
            )
            continue
        if stream == SNAPSHOT_DONE_STREAM:
            mark = decode_mark(payload)
            at_us = _micros(cols["received_at"][i]) or 0
            out.by_table.setdefault(mark.table, []).append(Vanish(seq, mark.lsn, at_us))
            continue
        if stream == COLUMN_FILL_STREAM:
            fill = decode_fill(payload)
            out.by_table.setdefault(fill.table, []).append(
                Fill(
                    seq,
                    fill.lsn,
                    fill.column,
                    fill.type,
                    fill.value,
                    event_id,
                    source,
                    fill.table,
                    payload,
                    origin,
                )
            )
            continue
        try:
            event = decode_event(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            reason = f"change envelope does not decode: {exc}"
            out.problems.append(
                Problem(
                    seq,
                    event_id,
                    source,
                    stream,
                    None,
                    None,
                    FailureKind.MALFORMED_JSON,
                    reason,
                    payload,
                    origin,
                )
            )
            continue
        src = event.source
        name = f"{src.schema}.{src.table}"
        out.by_table.setdefault(name, []).append(
            Change(
                seq=seq,
                table=name,
                event_id=event_id,
                op=event.op,
                lsn=src.lsn,
                tx_id=src.txId,
                changed_at_us=_micros(cols["event_time"][i]) or src.ts_ms * 1000,
                snapshot=event.op == "r",
                before=event.before,
                after=event.after,
                columns=event.columns,
                unchanged=frozenset(event.unchanged),
                source=source,
                payload=payload,
                origin=origin,
            )
        )
    return out


def _micros(value: datetime | None) -> int | None:
    if value is None:
        return None
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _rejected(
    seq: int,
    event_id: str,
    source: str,
    table: str | None,
    payload: bytes,
    origin: str,
    rejection: str | None,
) -> Problem:
    kind, reason = FailureKind.MALFORMED_JSON.value, "rejected in stage 1"
    if rejection:
        try:
            found = orjson.loads(rejection)
            kind, reason = str(found.get("kind") or kind), str(found.get("reason") or reason)
        except orjson.JSONDecodeError:
            reason = rejection
    return Problem(seq, event_id, source, table, None, None, kind, reason, payload, origin)
