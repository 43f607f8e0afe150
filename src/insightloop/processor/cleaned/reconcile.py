"""Leaves of one table's rows → the table's columns, under the type policy of ``coltypes``.

Leaves are given with the column name ``naming`` chose. Several leaves may land in one
column: one key's values of different kinds, or different keys that snake-case to the same
name (``productId`` and ``product_id``). Per row the first leaf with a value wins the
column; a value the column cannot hold, or a second value for the same row, goes to the
twin of its kind (``<column>__<kind>``). A value that finds its twin taken as well (three
keys of one event snake-casing to one name) is counted in ``dropped``, not stored.

A new column's kind is its leaves' contract hint (``Named.hint``, the first leaf that has
one), else its first value's kind. An ``int`` column, new or existing, becomes ``long``
(``promoted``: the stage promotes it in place in the same commit as the rows) when a hint
says ``long`` or a value needs 64 bits; never any other promotion (``coltypes``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from insightloop.processor.cleaned.coltypes import PROMOTIONS, Kind, fit, promotion
from insightloop.processor.cleaned.naming import twin_column
from insightloop.processor.cleaned.objects import Leaf


@dataclass(frozen=True, slots=True)
class Named:
    """A leaf with the column it goes to, where it came from (the column's doc) and the
    kind its contract gives it (``hints``; None: no contract or no hint)."""

    column: str
    doc: str
    leaf: Leaf
    hint: Kind | None = None


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
    #: Existing columns to promote in place: name → new kind (``int`` → ``long``).
    promoted: dict[str, Kind] = field(default_factory=dict)

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
    column of another type, e.g. a fixed timestamp). A new column's kind is its hint, else
    that of its first value in row order; an ``int`` column may be promoted to ``long``."""
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
            column_kind = next((item.hint for item in items if item.hint is not None), items[0].leaf.kind)
        if column_kind is not None:
            wider = _promotion(items, column_kind)
            if wider is not None:
                if name in existing:
                    out.promoted[name] = wider
                column_kind = wider
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


def _promotion(items: list[Named], column: Kind) -> Kind | None:
    """The kind a ``column``-typed column must be promoted to for ``items``: a hint's
    (when Iceberg allows that promotion) or what a value needs; None: none."""
    wider = PROMOTIONS.get(column)
    if wider is None:
        return None
    for item in items:
        if item.hint == wider or promotion(item.leaf.values, item.leaf.kind, column) == wider:
            return wider
    return None


def _first_row(values: pa.Array) -> int:
    first: int = pc.index(values.is_valid(), True).as_py()
    return first


def _to_twin(out: Reconciled, name: str, kind: Kind, values: pa.Array, doc: str) -> None:
    if kind == Kind.INT:  # a twin holds a value's own kind: values are never ``int``
        kind, values = Kind.LONG, values.cast(pa.int64())
    taken = out.put(twin_column(name, kind), kind, values, f"{doc} ({kind} values)")
    if taken is not None:
        out.dropped += len(taken) - taken.null_count
