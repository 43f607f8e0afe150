"""Leaves of one table's rows → the table's columns, under the type policy of ``coltypes``.

Leaves are given with the column name ``naming`` chose. Several leaves may land in one
column: one key's values of different kinds, or different keys that snake-case to the same
name (``productId`` and ``product_id``). Per row the first leaf with a value wins the
column; a value the column cannot hold, or a second value for the same row, goes to the
twin of its kind (``<column>__<kind>``). A value that finds its twin taken as well (three
keys of one event snake-casing to one name) is counted in ``dropped``, not stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from insightloop.processor.cleaned.coltypes import Kind, fit
from insightloop.processor.cleaned.naming import twin_column
from insightloop.processor.cleaned.objects import Leaf


@dataclass(frozen=True, slots=True)
class Named:
    """A leaf with the column it goes to and where it came from (the column's doc)."""

    column: str
    doc: str
    leaf: Leaf


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    values: pa.Array
    doc: str


@dataclass(slots=True)
class Reconciled:
    columns: dict[str, Column] = field(default_factory=dict)
    #: Values stored nowhere (see the module docstring).
    dropped: int = 0

    def put(self, name: str, kind: Kind, values: pa.Array, doc: str) -> pa.Array | None:
        """Merge ``values`` into column ``name``; returns the values of rows already taken."""
        current = self.columns.get(name)
        if current is None:
            self.columns[name] = Column(name, kind, values, doc)
            return None
        both = pc.and_(current.values.is_valid(), values.is_valid())
        merged = pc.coalesce(current.values, values)
        self.columns[name] = Column(name, kind, merged, current.doc)
        if not pc.any(both).as_py():
            return None
        return pc.if_else(both, values, pa.scalar(None, values.type))


def reconcile(named: Iterable[Named], existing: Mapping[str, Kind | None]) -> Reconciled:
    """Columns for ``named`` leaves, given the table's columns (name → kind, None for a
    column of another type, e.g. a fixed timestamp). A new column's kind is that of its
    first value in row order."""
    by_column: dict[str, list[Named]] = {}
    for item in named:
        if not item.leaf.empty:
            by_column.setdefault(item.column, []).append(item)
    out = Reconciled()
    for name, items in by_column.items():
        if name in existing:
            column_kind = existing[name]
        else:
            if len(items) > 1:
                items.sort(key=lambda item: _first_row(item.leaf.values))
            column_kind = items[0].leaf.kind
        for item in items:
            leaf = item.leaf
            fitted, rest = fit(leaf.values, leaf.kind, column_kind) if column_kind else (None, leaf.values)
            if fitted is not None and column_kind is not None:
                taken = out.put(name, column_kind, fitted, item.doc)
                if taken is not None:
                    _to_twin(out, name, column_kind, taken, item.doc)
            if rest is not None:
                _to_twin(out, name, leaf.kind, rest, item.doc)
    return out


def _first_row(values: pa.Array) -> int:
    first: int = pc.index(values.is_valid(), True).as_py()
    return first


def _to_twin(out: Reconciled, name: str, kind: Kind, values: pa.Array, doc: str) -> None:
    taken = out.put(twin_column(name, kind), kind, values, f"{doc} ({kind} values)")
    if taken is not None:
        out.dropped += len(taken) - taken.null_count
