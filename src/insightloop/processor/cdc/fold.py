"""What a table's changes do to its rows, in LSN order: the semantics of stage 2, on plain
Python rows (``dict`` per row, keyed by the primary-key tuple), no I/O.

- A change applies only if its LSN is newer than the row's ``_lsn`` (tombstones keep
  theirs), or, for a key without a row, newer than the last TRUNCATE: a redelivered or
  stale change is a no-op and adds no history. Redelivery repeats (LSN, table, key), so
  the event id repeats too: history stays unique by ``event_id``.
- c/u/r set the row's image: values of ``after``; columns in ``unchanged`` (TOAST values
  not sent) keep the earlier value; columns the change does not carry are null (dropped).
  An update that moves the primary key deletes the old key's row.
- A snapshot read (r) equal to the live row changes only its ``_lsn`` (a repeated
  snapshot adds no history; the bumped LSN keeps the row from the SnapshotDone sweep).
- d and t leave tombstones (``_deleted``) at their LSN; t applies to every row older
  than it (one history row, no key); ``Vanish`` (SnapshotDone) tombstones the live rows
  older than the snapshot, one ``d`` history row each.
- A ``Fill`` (an added column's stored default) sets the column on the live rows older
  than its LSN where it is null: rows changed at or after it carry the column themselves
  (an explicit NULL included), and a repeated fill finds nothing null. Their ``_lsn`` stays
  (the fill is no change of the row), and no history row is written.
- A value the column cannot take (incompatible type change, bad value) keeps the row's
  earlier value and becomes a ``Problem``; a change without its key is a ``Problem``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pyiceberg.types import IcebergType

from insightloop.processor.cdc.events import Change, Event, Fill, Problem, Vanish
from insightloop.processor.cdc.pgtypes import iceberg_type, is_json, type_change
from insightloop.processor.cdc.values import convert
from insightloop.types import FailureKind

Key = tuple[Any, ...]
Row = dict[str, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _same(a: Any, b: Any) -> bool:
    """Equal values, NaN included (a float column's NaN is the same value again, although
    ``nan != nan``: a repeated snapshot of it must not count as a change)."""
    return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


class Fold:
    """Applies one table's events to ``rows`` (the rows of every key the events touch, or
    of the whole table when a TRUNCATE or SnapshotDone is among them)."""

    def __init__(
        self,
        table: str,
        key: list[str],
        columns: Mapping[str, IcebergType],
        rows: dict[Key, Row],
        truncate_lsn: int,
    ) -> None:
        self.table = table
        self.key = key
        self.columns = columns
        self.rows = rows
        self.truncate_lsn = truncate_lsn
        #: History rows, each with the raw ``ingest_seq`` it came from (``_seq``).
        self.history: list[Row] = []
        self.problems: list[Problem] = []
        self.applied = 0
        #: Some row changed (a change applied, or a repeated snapshot moved a row's ``_lsn``).
        self.dirty = False
        self._compatible: dict[tuple[str, str], bool] = {}

    def apply(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Vanish):
                self._vanish(event)
            elif isinstance(event, Fill):
                self._fill(event)
            elif event.op == "t":
                self._truncate(event)
            elif event.op in ("c", "u", "r", "d"):
                self._change(event)
            else:
                self.problems.append(event.problem(FailureKind.UNKNOWN_TYPE, f"unknown op {event.op!r}"))

    # -- one key ----------------------------------------------------------------------

    def _change(self, change: Change) -> None:
        image = change.before if change.op == "d" else change.after
        key = self._key(change, image)
        if key is None:
            return
        current = self.rows.get(key)
        if not self._newer(change.lsn, current):
            return
        at = timestamp(change.changed_at_us)
        if change.op == "d":
            self._tombstone(key, current, change.lsn, at, change, image)
            return
        if change.op == "u" and change.before:
            old_key = self._key(change, change.before, quiet=True)
            if old_key is not None and old_key != key:
                old = self.rows.get(old_key)
                if self._newer(change.lsn, old):
                    self._tombstone(old_key, old, change.lsn, at, change, change.before, suffix=":moved")
        live = current if current is not None and not current["_deleted"] else None
        values = self._values(change, live)
        if change.op == "r" and live is not None and all(_same(live.get(n), v) for n, v in values.items()):
            live["_lsn"] = change.lsn  # a repeated snapshot: nothing changed
            self.dirty = True
            return
        row: Row = {**values, "_lsn": change.lsn, "_changed_at": at, "_deleted": False}
        self.rows[key] = row
        self._record(change.event_id, change.op, change, row, change.seq)

    def _newer(self, lsn: int, current: Row | None) -> bool:
        if current is None:
            return lsn > self.truncate_lsn
        return bool(lsn > current["_lsn"])

    def _key(self, change: Change, image: dict[str, Any] | None, *, quiet: bool = False) -> Key | None:
        if not self.key or image is None or any(image.get(name) is None for name in self.key):
            if not quiet:
                what = "the table has no primary key" if not self.key else f"no value for key {self.key}"
                self.problems.append(change.problem(FailureKind.MISSING_FIELD, f"{change.op} change: {what}"))
            return None
        try:
            return tuple(convert(image[name], self.columns[name]) for name in self.key)
        except (ValueError, KeyError) as exc:
            if not quiet:
                self.problems.append(change.problem(FailureKind.WRONG_TYPE, f"key value: {exc}"))
            return None

    def _values(self, change: Change, base: Row | None) -> Row:
        after = change.after or {}
        declared = dict(change.declared())
        values: Row = {}
        for name, kind in self.columns.items():
            if name in change.unchanged:
                values[name] = base.get(name) if base is not None else None
            elif name not in after:
                values[name] = None
            elif not self._fits(name, declared.get(name), kind):
                values[name] = base.get(name) if base is not None else None
                reason = (
                    f"type change of {self.table}.{name}: the source says {declared.get(name)}, "
                    f"the lake column is {kind}; value kept out"
                )
                self.problems.append(change.problem(FailureKind.TYPE_CONFLICT, reason, name))
            else:
                try:
                    values[name] = convert(after[name], kind, as_json=is_json(declared.get(name)))
                except ValueError as exc:
                    values[name] = base.get(name) if base is not None else None
                    reason = f"value of {self.table}.{name} ({kind}): {exc}"
                    self.problems.append(change.problem(FailureKind.WRONG_TYPE, reason, name))
        return values

    def _fits(self, name: str, pg_type: str | None, kind: IcebergType) -> bool:
        if pg_type is None:
            return True
        found = self._compatible.get((name, pg_type))
        if found is None:
            found = self._compatible[(name, pg_type)] = (
                type_change(kind, iceberg_type(pg_type)) != "incompatible"
            )
        return found

    def _tombstone(
        self,
        key: Key,
        current: Row | None,
        lsn: int,
        at: datetime,
        change: Change,
        image: dict[str, Any] | None,
        suffix: str = "",
    ) -> None:
        if current is not None and not current["_deleted"]:
            last = {name: current.get(name) for name in self.columns}
        else:
            last = {name: None for name in self.columns}
            last.update(zip(self.key, key, strict=True))
        row: Row = {**last, "_lsn": lsn, "_changed_at": at, "_deleted": True}
        self.rows[key] = row
        self._record(change.event_id + suffix, "d", change, row, change.seq)

    # -- the whole table ----------------------------------------------------------------

    def _truncate(self, change: Change) -> None:
        if change.lsn <= self.truncate_lsn:
            return
        self.truncate_lsn = change.lsn
        self.dirty = True
        at = timestamp(change.changed_at_us)
        for row in self.rows.values():
            if not row["_deleted"] and row["_lsn"] < change.lsn:
                row.update(_lsn=change.lsn, _changed_at=at, _deleted=True)
        empty: Row = {name: None for name in self.columns}
        self._record(
            change.event_id, "t", change, {**empty, "_lsn": change.lsn, "_changed_at": at}, change.seq
        )

    def _vanish(self, mark: Vanish) -> None:
        at = timestamp(mark.at_us)
        for key, row in self.rows.items():
            if row["_deleted"] or row["_lsn"] >= mark.lsn:
                continue
            row.update(_lsn=mark.lsn, _changed_at=at, _deleted=True)
            event_id = (
                "vanished:"
                + hashlib.blake2b(repr((self.table, key, mark.lsn)).encode(), digest_size=16).hexdigest()
            )
            self.history.append(
                {**row, "event_id": event_id, "_op": "d", "_tx_id": None, "_snapshot": True, "_seq": mark.seq}
            )
            self.applied += 1
            self.dirty = True

    def _fill(self, fill: Fill) -> None:
        kind = self.columns.get(fill.column)
        if kind is None:
            return  # no change declared the column: nothing holds it
        try:
            value = convert(fill.value, kind, as_json=is_json(fill.type))
        except ValueError as exc:
            reason = f"default of added column {self.table}.{fill.column} ({kind}): {exc}"
            self.problems.append(fill.problem(FailureKind.WRONG_TYPE, reason))
            return
        for row in self.rows.values():
            if not row["_deleted"] and row["_lsn"] < fill.lsn and row.get(fill.column) is None:
                row[fill.column] = value
                self.dirty = True

    def _record(self, event_id: str, op: str, change: Change, row: Row, seq: int) -> None:
        entry = {name: row.get(name) for name in self.columns}
        entry.update(
            event_id=event_id, _op=op, _lsn=row["_lsn"], _tx_id=change.tx_id, _changed_at=row["_changed_at"],
            _snapshot=change.snapshot, _seq=seq,
        )  # fmt: skip
        self.history.append(entry)
        self.applied += 1
        self.dirty = True
