"""A batch's kept events → one Arrow table per cleaned table (with its new columns).

``prepare`` sorts the events into their tables (each track event into ``tracks`` and into
its own event table), computes the shared columns once (``common``), and parses each
table's properties or traits as one group (``objects``). An event whose ``context``,
``properties`` or ``traits`` is not a JSON object lands in no table: ``bad`` says which
field, and the stage quarantines it.

``build`` then makes one table's rows, leaving out those the table already holds (raw
sequence at or below what its last commit recorded): naming the leaves (``naming``),
fitting them to the table's column types (``reconcile``) and listing the columns to add.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from insightloop.processor.cleaned.coltypes import ARROW_TYPES, Kind
from insightloop.processor.cleaned.common import Common, build_common
from insightloop.processor.cleaned.naming import context_column, dynamic_column, event_table_name
from insightloop.processor.cleaned.objects import Parsed, parse_objects
from insightloop.processor.cleaned.reconcile import Column, Named, Reconciled, reconcile
from insightloop.processor.cleaned.tables import BY_TYPE, FIXED_TABLES, TableSpec, arrow_type_of, event_spec
from insightloop.segment.message import Message, id_text


@dataclass(slots=True)
class Group:
    """The events of one table: their positions in the batch and their parsed object."""

    spec: TableSpec
    positions: list[int] = field(default_factory=list)
    dynamic: Parsed | None = None


@dataclass(slots=True)
class Prepared:
    messages: Sequence[Message]
    seqs: list[int]
    common: Common
    groups: dict[str, Group]
    #: Events that go to no table: position → the field that is not a JSON object.
    bad: dict[int, str]
    #: Per position, the table of a track event (None for other types).
    event_tables: list[str | None]


@dataclass(slots=True)
class Built:
    spec: TableSpec
    data: pa.Table
    new_columns: list[Column]
    dropped: int


_event_names: dict[str, str] = {}
_event_specs: dict[str, TableSpec] = {}


def event_table(event: str) -> str:
    name = _event_names.get(event)
    if name is None:
        name = event_table_name(event, FIXED_TABLES)
        if len(_event_names) < 100_000:
            _event_names[event] = name
    return name


def _event_spec(name: str) -> TableSpec:
    spec = _event_specs.get(name)
    if spec is None:
        spec = _event_specs[name] = event_spec(name)
    return spec


def prepare(
    raw: pa.Table, messages: Sequence[Message], streams: Sequence[str], loaded_at_us: int
) -> Prepared:
    """``raw`` rows (all of known message types) with their decoded ``messages``."""
    common = build_common(raw, messages, loaded_at_us)
    groups: dict[str, Group] = {}
    event_tables: list[str | None] = []
    for position, (stream, message) in enumerate(zip(streams, messages, strict=True)):
        spec = BY_TYPE[stream]
        group = groups.get(spec.identifier)
        if group is None:
            group = groups[spec.identifier] = Group(spec)
        group.positions.append(position)
        if stream != "track":
            event_tables.append(None)
            continue
        name = event_table(message.event or "")
        event_tables.append(name)
        spec = _event_spec(name)
        group = groups.get(spec.identifier)
        if group is None:
            group = groups[spec.identifier] = Group(spec)
        group.positions.append(position)
    bad = dict.fromkeys(common.bad_context, "context")
    for group in groups.values():
        attribute = group.spec.dynamic
        if attribute is None:
            continue
        group.dynamic = parse_objects([getattr(messages[p], attribute) for p in group.positions])
        for index in group.dynamic.not_objects:
            bad.setdefault(group.positions[index], attribute)
    seqs = raw.column("ingest_seq").to_pylist()
    return Prepared(messages, seqs, common, groups, bad, event_tables)


def select(
    prepared: Prepared, group: Group, after_seq: int, keep: Callable[[int], bool] | None = None
) -> list[int]:
    """Indices into ``group.positions`` of the events a table still lacks."""
    bad, seqs = prepared.bad, prepared.seqs
    positions = group.positions
    if not bad and keep is None and seqs[positions[0]] > after_seq:
        return list(range(len(positions)))
    return [
        index
        for index, position in enumerate(positions)
        if position not in bad and seqs[position] > after_seq and (keep is None or keep(position))
    ]


def dynamic_named(
    group: Group, chosen: pa.Array | None, reserved: frozenset[str], prefix: str
) -> list[Named]:
    """The group's properties or traits as named leaves, for the ``chosen`` rows."""
    if group.dynamic is None or group.spec.dynamic is None:
        return []
    source = group.spec.dynamic
    out = []
    for leaf in group.dynamic.leaves:
        taken = leaf if chosen is None else leaf.take(chosen)
        doc = source + "." + ".".join(leaf.path)
        out.append(Named(dynamic_column(leaf.path, prefix, reserved), doc, taken))
    return out


def build(prepared: Prepared, group: Group, after_seq: int, kinds: Mapping[str, Kind | None]) -> Built | None:
    """The rows of ``group``'s table above ``after_seq``; None when there are none."""
    chosen = select(prepared, group, after_seq)
    if not chosen:
        return None
    spec = group.spec
    positions = [group.positions[i] for i in chosen]
    rows = pa.array(positions, pa.int64())
    within = None if len(chosen) == len(group.positions) else pa.array(chosen, pa.int64())
    columns: dict[str, pa.Array] = {}
    for name, _, _ in spec.columns:
        shared = prepared.common.columns.get(name)
        columns[name] = shared.take(rows) if shared is not None else _extra(name, prepared, positions)
    named = [
        Named(context_column(leaf.path), "context." + ".".join(leaf.path), leaf.take(rows))
        for leaf in prepared.common.context
    ]
    named.extend(dynamic_named(group, within, spec.fixed_names, spec.prefix))
    reconciled = reconcile(named, kinds)
    return Built(
        spec, assemble(spec, columns, reconciled), new_columns(reconciled, kinds), reconciled.dropped
    )


def new_columns(reconciled: Reconciled, kinds: Mapping[str, Kind | None]) -> list[Column]:
    return [column for column in reconciled.columns.values() if column.name not in kinds]


def assemble(spec: TableSpec, fixed: Mapping[str, pa.Array], reconciled: Reconciled) -> pa.Table:
    names = list(fixed)
    arrays = [_typed(fixed[name], arrow_type_of(t)) for name, t, _ in spec.columns]
    for column in reconciled.columns.values():
        names.append(column.name)
        arrays.append(_typed(column.values, ARROW_TYPES[column.kind]))
    return pa.Table.from_arrays(arrays, names=names)


def _typed(values: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    return values if values.type == arrow_type else values.cast(arrow_type)


def _extra(name: str, prepared: Prepared, positions: list[int]) -> pa.Array:
    messages = prepared.messages
    values: list[str | None]
    if name == "event":
        tables = prepared.event_tables
        values = [tables[p] for p in positions]
    elif name == "event_text":
        values = [messages[p].event for p in positions]
    elif name == "name":
        values = [messages[p].name for p in positions]
    elif name == "category":
        values = [messages[p].category for p in positions]
    elif name == "group_id":
        values = [id_text(messages[p].group_id) for p in positions]
    elif name == "previous_id":
        values = [id_text(messages[p].previous_id) for p in positions]
    else:
        raise KeyError(f"cleaned tables have no fixed column {name!r}")
    return pa.array(values, pa.string())
