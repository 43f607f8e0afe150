"""One source table's share of a stage-2 batch: read what it touches, fold its events,
then (when told) commit history, then current state.

Each table skips what it already holds: events at or below the current-state table's
``RAW_SEQ`` are not folded (their effect is in it), history rows at or below the history
table's are not appended. History is committed before current state, so whenever state
holds a sequence, history holds it too (a sequence that made no history rows has none to
lose), and a replay folding against the old state rebuilds exactly the missing rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.table import FileScanTask, Table
from pyiceberg.types import IcebergType

from insightloop.lake.watermarks import RAW_SEQ, committed_property
from insightloop.processor.cdc import layout, naming, store
from insightloop.processor.cdc.events import Change, Event, Fill, Problem, Vanish
from insightloop.processor.cdc.evolve import Evolution, plan
from insightloop.processor.cdc.fold import Fold, Key, Row
from insightloop.processor.cdc.values import convert


@dataclass(slots=True)
class Outcome:
    """What a table batch did (for stats and metrics)."""

    table: str
    changes: int
    history_rows: int
    last_lsn: int | None
    committed: bool


class TableBatch:
    def __init__(self, catalog: Catalog, source_table: str, events: Sequence[Event]) -> None:
        self.source_table = source_table
        self._catalog = catalog
        self._events = events
        self._state: Table | None = store.load(catalog, naming.state_identifier(source_table))
        self._history: Table | None = store.load(catalog, naming.history_identifier(source_table))
        self._state_seq = store.table_seq(self._state)
        self._history_seq = store.table_seq(self._history)
        self._fold: Fold | None = None
        self._tasks: list[FileScanTask] = []
        self._rest: pa.Table | None = None
        self._evolution: Evolution | None = None
        self._history_evolution: Evolution | None = None
        self._key_changed = False
        self.problems: list[Problem] = []

    def prepare(self) -> None:
        """Read the rows the events touch and fold the events (no commit)."""
        todo = [e for e in self._events if e.seq > self._state_seq]
        changes = [e for e in todo if isinstance(e, Change)]
        if not todo:
            return
        if self._state is None:
            first = plan({}, changes)
            if not first.key:
                # No primary key: nothing can be upserted. The fold says so per change.
                fold = Fold(self.source_table, [], first.columns, {}, 0)
                fold.apply(todo)
                self.problems = fold.problems
                return
            self._create(first)
        assert self._state is not None
        if self._history is None:  # a crash between creating the two tables
            self._history = self._create_history(
                list(layout.source_columns(self._state.schema(), layout.STATE_META).items()),
                self._state.properties.get(layout.KEY_PROPERTY, "[]"),
            )
        columns = layout.source_columns(self._state.schema(), layout.STATE_META)
        evolution = self._evolution = plan(columns, changes)
        stored_key = layout.decode_key(self._state.properties.get(layout.KEY_PROPERTY))
        key = evolution.key or stored_key
        self._key_changed = bool(evolution.key) and evolution.key != stored_key
        history_columns = layout.source_columns(self._history.schema(), layout.HISTORY_META)
        self._history_evolution = plan(history_columns, [c for c in changes if c.seq > self._history_seq])

        target = store.arrow_schema(self._state, evolution)
        table_wide = any(isinstance(e, Vanish | Fill) or e.op == "t" for e in todo)
        keys = None if table_wide else _first_keys(changes, key[0], evolution)
        if keys is not None and not keys:
            self._tasks, old = [], target.empty_table()
        else:
            self._tasks, old = store.read_state(self._state, key[0], keys)
            old = store.conform(old, target)
        if keys is None:
            touched, self._rest = old, target.empty_table()
        else:
            mask = pc.is_in(old.column(key[0]), value_set=pa.array(keys, target.field(key[0]).type))
            touched, self._rest = old.filter(mask), old.filter(pc.invert(mask))
        rows: dict[Key, Row] = {tuple(r[k] for k in key): r for r in touched.to_pylist()}
        truncate = committed_property(self._state, layout.TRUNCATE_PROPERTY)
        fold = self._fold = Fold(self.source_table, key, evolution.columns, rows, int(truncate or 0))
        fold.apply(todo)
        self.problems = fold.problems

    def commit(self, top: int) -> Outcome:
        """History first, then current state; each records ``top``."""
        fold = self._fold
        if fold is None or self._state is None or self._history is None:
            return Outcome(self.source_table, 0, 0, None, False)
        history = [row for row in fold.history if row["_seq"] > self._history_seq]
        if history:
            schema = store.arrow_schema(self._history, self._history_evolution)
            data = pa.Table.from_pylist(history, schema=schema)
            store.append_rows(self._history, data, self._history_evolution, {RAW_SEQ: str(top)})
        assert self._evolution is not None and self._rest is not None
        if not (fold.dirty or self._evolution.changed or self._key_changed):
            return Outcome(self.source_table, fold.applied, len(history), None, False)
        target = store.arrow_schema(self._state, self._evolution)
        data = pa.concat_tables([self._rest, pa.Table.from_pylist(list(fold.rows.values()), schema=target)])
        properties = {RAW_SEQ: str(top), layout.TRUNCATE_PROPERTY: str(fold.truncate_lsn)}
        table_properties = {layout.KEY_PROPERTY: layout.encode_key(fold.key)} if self._key_changed else {}
        store.replace_state(self._state, self._tasks, data, self._evolution, properties, table_properties)
        last = max((row["_lsn"] for row in fold.rows.values()), default=None)
        return Outcome(self.source_table, fold.applied, len(history), last, True)

    def _create(self, first: Evolution) -> None:
        columns = list(first.columns.items())
        key = layout.encode_key(first.key)
        state_schema = layout.state_schema(columns)
        self._state = store.create(
            self._catalog,
            naming.state_identifier(self.source_table),
            state_schema,
            layout.state_spec(state_schema, first.key),
            key,
        )
        self._history = self._history or self._create_history(columns, key)

    def _create_history(self, columns: list[tuple[str, IcebergType]], key: str) -> Table:
        schema = layout.history_schema(columns)
        identifier = naming.history_identifier(self.source_table)
        return store.create(self._catalog, identifier, schema, layout.history_spec(schema), key)


def _first_keys(changes: Sequence[Change], column: str, evolution: Evolution) -> list[object]:
    """The distinct values of the key's first column among ``changes`` (before and after
    images, so a moved key's old row is found too)."""
    kind = evolution.columns.get(column)
    found: dict[object, None] = {}
    for change in changes:
        for image in (change.before, change.after):
            value = image.get(column) if image else None
            if value is None or kind is None:
                continue
            try:
                found[convert(value, kind)] = None
            except ValueError:
                continue
    return list(found)
