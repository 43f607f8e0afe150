"""A batch's kept events → one Arrow table per cleaned table (with its new columns).

``prepare`` puts the events in table order (a stable sort: track events first, grouped by
their event's table, then pages, identifies …; raw order within a table), so every table's
rows are one contiguous range and most columns are zero-copy slices. ``tracks`` is the
range of all track events. It computes the shared columns once (``common``) and parses
each table's properties or traits as one group (``objects``). An event whose ``context``,
``properties`` or ``traits`` is not a JSON object lands in no table: ``bad`` says which
field, and the stage quarantines it.

``build`` then makes one table's rows, leaving out those the table already holds (raw
sequence at or below what its last commit recorded): naming the leaves (``naming``),
giving each property or trait its contract's type hint (``hints``: the contract of the
table, see ``contract_target``), fitting them to the table's column types (``reconcile``)
and listing the columns to add and those to promote in place (``int`` → ``long``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from insightloop.contracts.registry import TRAITS
from insightloop.processor.cleaned.coltypes import ARROW_TYPES, Kind
from insightloop.processor.cleaned.common import Common, build_common
from insightloop.processor.cleaned.hints import Hints, HintsOf
from insightloop.processor.cleaned.naming import context_column, dynamic_column, event_table_name
from insightloop.processor.cleaned.objects import Leaf, Parsed, parse_objects
from insightloop.processor.cleaned.reconcile import Column, Named, Reconciled, reconcile
from insightloop.processor.cleaned.tables import (
    BY_TYPE,
    FIXED_TABLES,
    GROUPS,
    IDENTIFIES,
    TRACKS,
    TableSpec,
    arrow_type_of,
    event_spec,
)
from insightloop.segment.message import Message, id_text

#: Raw columns the tables are built from (not the payload: it is only quarantined).
_USED = (
    "event_id",
    "source",
    "stream",
    "schema_name",
    "event_time",
    "received_at",
    "subject_user_id",
    "subject_anonymous_id",
    "delivery",
    "ingest_seq",
)


@dataclass(slots=True)
class Group:
    """The events of one table: positions ``start`` to ``stop`` of the prepared batch."""

    spec: TableSpec
    start: int
    stop: int
    dynamic: Parsed | None = None


@dataclass(slots=True)
class Prepared:
    messages: list[Message]
    #: Per position, the index of the event in ``kept``.
    order: list[int]
    seqs: list[int]
    common: Common
    groups: dict[str, Group]
    #: Events that go to no table: position → the field that is not a JSON object.
    bad: dict[int, str]
    #: Per position, the table of a track event's own table (null for other types).
    event_tables: pa.Array
    #: Per position, the event name as sent (raw ``schema_name``; tracks only).
    event_texts: pa.Array
    #: Per position, the contract violation of an event loaded under ``warn`` (else null);
    #: None when no event of the batch has one.
    warnings: pa.Array | None = None


@dataclass(slots=True)
class Built:
    spec: TableSpec
    data: pa.Table
    #: Columns to add, and existing columns to promote in place (``int`` → ``long``).
    new_columns: list[Column]
    dropped: int


_event_names: dict[str, str] = {}
#: Separates an event name from its contract MODEL in a table key. (An event name that
#: itself ends in this character and digits, and has no contract, would be taken for a MODEL
#: suffix: it would only change which table it lands in.)
_MODEL = "\x1e"
#: The column of an event loaded despite its contract (``warn``): the contract and its violations.
#: A leading ``_`` never comes out of ``snake_case``, so no property can take this name.
WARNING_COLUMN = "_contract_warning"


def event_table(event: str) -> str:
    name = _event_names.get(event)
    if name is None:
        name = event_table_name(event, FIXED_TABLES)
        if len(_event_names) < 100_000:
            _event_names[event] = name
    return name


def prepare(
    raw: pa.Table,
    kept: list[int],
    messages: Sequence[Message],
    loaded_at_us: int,
    *,
    models: Sequence[int] | None = None,
    warnings: Sequence[str | None] | None = None,
) -> Prepared:
    """The ``kept`` rows of ``raw`` (all of known message types) with their decoded
    ``messages`` (aligned with ``kept``), and optionally, aligned with ``kept`` too, each
    event's contract MODEL (a track event of MODEL 2 or more goes to ``<event>_v<MODEL>``)
    and its ``warn`` violation."""
    picked = None if len(kept) == raw.num_rows else pa.array(kept, pa.int64())

    def column(name: str) -> pa.Array:
        values = raw.column(name).combine_chunks()
        return (values if picked is None else values.take(picked)).cast(pa.string())

    streams = column("stream")
    events = pc.fill_null(column("schema_name"), "")
    if models is not None and any(model > 1 for model in models):
        suffixes = pa.array([f"{_MODEL}{model}" if model > 1 else "" for model in models], pa.string())
        tracked_keys = pc.binary_join_element_wise("t\x1f", events, suffixes, "")
    else:
        tracked_keys = pc.binary_join_element_wise("t\x1f", events, "")
    keys = pc.if_else(pc.equal(streams, "track"), tracked_keys, streams)
    encoded = pc.dictionary_encode(keys)
    uniques: list[str] = encoded.dictionary.to_pylist()
    specs = [_spec_of(key) for key in uniques]
    # Track events first, each table's keys together; then the other types.
    ranked = sorted(
        range(len(uniques)), key=lambda i: (not uniques[i].startswith("t\x1f"), specs[i].identifier)
    )
    rank_of = [0] * len(uniques)
    for rank, unique in enumerate(ranked):
        rank_of[unique] = rank
    row_ranks = pa.array(rank_of, pa.int32()).take(encoded.indices)
    order = pc.sort_indices(row_ranks)  # stable: raw order within a table
    counts = [0] * len(uniques)
    for item in pc.value_counts(row_ranks).to_pylist():
        counts[item["values"]] = item["counts"]

    groups: dict[str, Group] = {}
    start = 0
    for rank, unique in enumerate(ranked):
        stop = start + counts[rank]
        spec = specs[unique]
        group = groups.get(spec.identifier)
        if group is None:
            groups[spec.identifier] = Group(spec, start, stop)
        else:
            group.stop = stop
        start = stop
    tracked = sum(counts[rank] for rank, unique in enumerate(ranked) if uniques[unique].startswith("t\x1f"))
    if tracked:
        groups = {TRACKS.identifier: Group(TRACKS, 0, tracked), **groups}

    table_names = [
        spec.identifier.split(".", 1)[1] if key.startswith("t\x1f") else None
        for key, spec in zip(uniques, specs, strict=True)
    ]
    rows = raw.select(_USED).take(order if picked is None else picked.take(order))
    ordered = [messages[i] for i in order.to_pylist()]
    common = build_common(rows, ordered, loaded_at_us)
    bad = dict.fromkeys(common.bad_context, "context")
    for group in groups.values():
        attribute = group.spec.dynamic
        if attribute is not None:
            raws = [getattr(m, attribute) for m in ordered[group.start : group.stop]]
            group.dynamic = parse_objects(raws, hint=f"{group.spec.identifier} {attribute}")
            bad.update((group.start + i, attribute) for i in group.dynamic.not_objects)
    return Prepared(
        messages=ordered,
        order=order.to_pylist(),
        seqs=rows.column("ingest_seq").to_pylist(),
        common=common,
        groups=groups,
        bad=bad,
        event_tables=pa.array(table_names, pa.string()).take(encoded.indices).take(order),
        event_texts=rows.column("schema_name").combine_chunks().cast(pa.string()),
        warnings=None if warnings is None else pa.array(warnings, pa.string()).take(order),
    )


def _spec_of(key: str) -> TableSpec:
    if key.startswith("t\x1f"):
        event, marked, model = key[2:].rpartition(_MODEL)
        if not marked or not model.isdigit():
            event, model = key[2:], ""
        table = event_table(event)
        return event_spec(f"{table}_v{model}" if model else table)
    return BY_TYPE[key]


def select(prepared: Prepared, group: Group, after_seq: int) -> list[int] | None:
    """Positions of ``group``'s events its table still lacks; None: all of them."""
    bad, seqs = prepared.bad, prepared.seqs
    start, stop = group.start, group.stop
    if min(seqs[start:stop]) > after_seq and not any(start <= p < stop for p in bad):
        return None
    return [p for p in range(start, stop) if p not in bad and seqs[p] > after_seq]


class Rows:
    """How to pick one table's rows out of the prepared batch's columns."""

    def __init__(self, group: Group, chosen: list[int] | None) -> None:
        self.group = group
        self.positions: Sequence[int] = range(group.start, group.stop) if chosen is None else chosen
        self._chosen = None if chosen is None else pa.array(chosen, pa.int64())
        self._within = None if chosen is None else pa.array([p - group.start for p in chosen], pa.int64())

    def of_batch(self, values: pa.Array) -> pa.Array:
        """``values`` aligned with the batch → this table's rows."""
        if self._chosen is None:
            return values.slice(self.group.start, self.group.stop - self.group.start)
        return values.take(self._chosen)

    def of_group(self, leaf: Leaf) -> Leaf:
        """A leaf aligned with the group → this table's rows."""
        return leaf if self._within is None else leaf.take(self._within)


def dynamic_named(
    group: Group, rows: Rows, reserved: frozenset[str], prefix: str, hints: Hints | None = None
) -> list[Named]:
    """The group's properties or traits as named leaves, for the chosen rows, each with its
    contract's type hint (``hints``: key path → kind)."""
    if group.dynamic is None or group.spec.dynamic is None:
        return []
    source = group.spec.dynamic
    return [
        Named(
            dynamic_column(leaf.path, prefix, reserved),
            source + "." + ".".join(leaf.path),
            rows.of_group(leaf),
            hints.get(leaf.path) if hints else None,
        )
        for leaf in group.dynamic.leaves
    ]


#: Tables of one contract whatever the event: message type and contract name.
_ONE_CONTRACT = {IDENTIFIES.identifier: ("identify", TRAITS), GROUPS.identifier: ("group", TRAITS)}
_BY_IDENTIFIER = frozenset(spec.identifier for spec in BY_TYPE.values())


def contract_target(prepared: Prepared, group: Group) -> tuple[str, str, int | None] | None:
    """Which contract describes the columns of ``group``'s table: (message type, event name,
    MODEL; None: the latest of any MODEL). A track event's own table holds the events of one
    MODEL (``<event>_v<MODEL>``, MODEL 1 without suffix); identifies and groups have the
    ``traits`` contract. None for tables without properties/traits and for pages and
    screens (one table for every page name, each with its own contract)."""
    spec = group.spec
    if spec.dynamic is None:
        return None
    one = _ONE_CONTRACT.get(spec.identifier)
    if one is not None:
        return one[0], one[1], None
    if spec.identifier in _BY_IDENTIFIER:
        return None
    event = prepared.event_texts[group.start].as_py() or ""
    table, base = spec.identifier.split(".", 1)[1], event_table(event)
    if table == base:
        return "track", event, 1
    suffix = table.removeprefix(base + "_v")
    if suffix != table and suffix.isdigit():
        return "track", event, int(suffix)
    return None


def build(
    prepared: Prepared,
    group: Group,
    after_seq: int,
    kinds: Mapping[str, Kind | None],
    hints_of: HintsOf | None = None,
) -> Built | None:
    """The rows of ``group``'s table above ``after_seq``; None when there are none.
    ``hints_of`` gives the column types the table's contract (``contract_target``) gives
    its properties/traits."""
    chosen = select(prepared, group, after_seq)
    if chosen is not None and not chosen:
        return None
    rows = Rows(group, chosen)
    spec = group.spec
    columns: dict[str, pa.Array] = {}
    for name, _, _ in spec.columns:
        shared = prepared.common.columns.get(name)
        columns[name] = rows.of_batch(shared) if shared is not None else _extra(name, prepared, rows)
    named = [
        Named(
            context_column(leaf.path),
            "context." + ".".join(leaf.path),
            Leaf(leaf.path, leaf.kind, rows.of_batch(leaf.values)),
        )
        for leaf in prepared.common.context
    ]
    target = contract_target(prepared, group) if hints_of is not None else None
    hints = hints_of(*target) if hints_of is not None and target is not None else None
    named.extend(dynamic_named(group, rows, spec.fixed_names, spec.prefix, hints))
    if prepared.warnings is not None:
        values = rows.of_batch(prepared.warnings)
        named.append(
            Named(WARNING_COLUMN, "contract violation (loaded under warn)", Leaf((), Kind.STRING, values))
        )
    reconciled = reconcile(named, kinds)
    data = assemble(spec, columns, reconciled)
    return Built(spec, data, new_columns(reconciled, kinds), reconciled.dropped)


def new_columns(reconciled: Reconciled, kinds: Mapping[str, Kind | None]) -> list[Column]:
    """The columns the commit defines: those the table lacks (``kinds``), and those it
    promotes in place (``Tables.write`` tells them apart)."""
    promoted = reconciled.promoted
    return [c for c in reconciled.columns.values() if c.name not in kinds or c.name in promoted]


def assemble(spec: TableSpec, fixed: Mapping[str, pa.Array], reconciled: Reconciled) -> pa.Table:
    names = list(fixed)
    arrays = [_typed(fixed[name], arrow_type_of(t)) for name, t, _ in spec.columns]
    for column in reconciled.columns.values():
        names.append(column.name)
        arrays.append(_typed(column.values, ARROW_TYPES[column.kind]))
    return pa.Table.from_arrays(arrays, names=names)


def _typed(values: pa.Array, arrow_type: pa.DataType) -> pa.Array:
    return values if values.type == arrow_type else values.cast(arrow_type)


def _extra(name: str, prepared: Prepared, rows: Rows) -> pa.Array:
    if name == "event":
        return rows.of_batch(prepared.event_tables)
    if name == "event_text":
        return rows.of_batch(prepared.event_texts)
    messages = prepared.messages
    values: list[str | None]
    if name == "name":
        values = [messages[p].name for p in rows.positions]
    elif name == "category":
        values = [messages[p].category for p in rows.positions]
    elif name == "group_id":
        values = [id_text(messages[p].group_id) for p in rows.positions]
    elif name == "previous_id":
        values = [id_text(messages[p].previous_id) for p in rows.positions]
    else:
        raise KeyError(f"cleaned tables have no fixed column {name!r}")
    return pa.array(values, pa.string())
