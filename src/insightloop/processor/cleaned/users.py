"""``cleaned.users``: each user's latest traits, merged from their identify calls.

As in Segment, traits merge key by key: a newer identify overrides the traits it carries
and keeps the others. "Newer" is by event time (``timestamp``), not arrival: every trait
column remembers the event time of the identify its value came from (``traits_updated_at``,
JSON column → µs), so a late, older identify only fills traits nobody newer has set. Ties
go to the later arrival. A null trait sets nothing (it cannot be told from an absent one).
``received_at``/``timestamp`` are those of the user's newest identify.

Column names and types are those of ``identifies`` (the same naming and type policy, the
same contract hints: the latest ``identify/traits``; an ``int`` column is promoted to
``long`` in place as in ``identifies``).

It is a current-state table, written as an overwrite of the batch's users (``overwrite``
with ``In("id", ids)``: one catalog commit; pyiceberg's upsert is avoided, see PITFALLS),
unpartitioned. The overwrite rewrites every data file holding one of those users, so its
cost grows with the table: compaction keeps the file count down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import BooleanExpression, In

from insightloop.contracts.registry import TRAITS
from insightloop.processor.cleaned.coltypes import ARROW_TYPES
from insightloop.processor.cleaned.commits import Tables
from insightloop.processor.cleaned.hints import HintsOf
from insightloop.processor.cleaned.reconcile import Column, reconcile
from insightloop.processor.cleaned.rows import Group, Prepared, Rows, dynamic_named, new_columns, select
from insightloop.processor.cleaned.tables import IDENTIFIES, TRAIT_TIMES, USERS, arrow_type_of
from insightloop.segment.message import to_micros

_RESERVED = IDENTIFIES.fixed_names | USERS.fixed_names
_OLDEST = -(2**63)


@dataclass(frozen=True, slots=True)
class UsersUpdate:
    """The new rows of the batch's users, the columns to add, and which stored rows they
    replace (None: all of them are new users)."""

    data: pa.Table
    new_columns: list[Column]
    replace: BooleanExpression | None
    dropped: int


def build_users(
    prepared: Prepared,
    identifies: Group,
    tables: Tables,
    loaded_at: datetime,
    hints_of: HintsOf | None = None,
) -> UsersUpdate | None:
    """The new state of every user the batch identifies (and the users table lacks);
    ``hints_of`` gives the column types of the identify traits contract."""
    start, stop = identifies.start, identifies.stop
    chosen = select(prepared, identifies, tables.seq(USERS))
    candidates = range(start, stop) if chosen is None else chosen
    user_ids = prepared.common.columns["user_id"]
    known = user_ids.slice(start, stop - start).to_pylist()
    picked = [p for p in candidates if known[p - start] is not None]
    if not picked:
        return None
    rows = Rows(identifies, None if len(picked) == stop - start else picked)
    kinds = tables.kinds(USERS)
    hints = hints_of("identify", TRAITS, None) if hints_of is not None else None
    reconciled = reconcile(dynamic_named(identifies, rows, _RESERVED, "trait", hints), kinds)
    defined = new_columns(reconciled, kinds)
    common = prepared.common.columns
    times = rows.of_batch(common["timestamp"])
    update = _Updates(
        ids=rows.of_batch(user_ids).to_pylist(),
        times=times.to_pylist(),
        micros=pc.cast(times, pa.int64()).to_pylist(),
        received=rows.of_batch(common["received_at"]).to_pylist(),
        traits={name: column.values.to_pylist() for name, column in reconciled.columns.items()},
    )
    distinct = sorted(set(update.ids))
    existing: list[dict[str, Any]] = []
    if tables.exists(USERS):
        existing = tables.table(USERS).scan(row_filter=_ids_in(distinct)).to_arrow().to_pylist()
    merged = _merge(existing, update, loaded_at)
    trait_kinds = {name: kind for name, kind in kinds.items() if kind and name not in _RESERVED}
    trait_kinds.update((c.name, c.kind) for c in defined)  # added, or promoted in place
    schema = pa.schema(
        [pa.field(name, arrow_type_of(t)) for name, t, _ in USERS.columns]
        + [pa.field(name, ARROW_TYPES[kind]) for name, kind in trait_kinds.items()]
    )
    data = pa.Table.from_pylist(merged, schema=schema)
    replace = _ids_in(sorted(row["id"] for row in existing)) if existing else None
    return UsersUpdate(data, defined, replace, reconciled.dropped)


def _ids_in(ids: list[str]) -> BooleanExpression:
    # pyiceberg's In is a pydantic model whose __new__ mypy does not see.
    expression: BooleanExpression = In("id", ids)  # type: ignore[call-arg, arg-type]
    return expression


@dataclass(frozen=True, slots=True)
class _Updates:
    """The batch's identifies of known users, in arrival order, as Python values."""

    ids: list[Any]
    times: list[Any]
    micros: list[Any]
    received: list[Any]
    traits: dict[str, list[Any]]


def _merge(existing: list[dict[str, Any]], update: _Updates, loaded_at: datetime) -> list[dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    trait_times: dict[str, dict[str, int]] = {}
    for row in existing:
        state[row["id"]] = row
        trait_times[row["id"]] = orjson.loads(row.get(TRAIT_TIMES) or "{}")
    # Oldest first; ties keep arrival order (sorted is stable), so the later arrival wins.
    for i in sorted(range(len(update.ids)), key=update.micros.__getitem__):
        user = update.ids[i]
        at = update.micros[i]
        row = state.setdefault(user, {"id": user})
        times = trait_times.setdefault(user, {})
        for name, values in update.traits.items():
            value = values[i]
            if value is not None and at >= times.get(name, _OLDEST):
                row[name] = value
                times[name] = at
        newest = row.get("timestamp")
        if newest is None or at >= to_micros(newest):
            row["timestamp"] = update.times[i]
            row["received_at"] = update.received[i]
    for user, row in state.items():
        row[TRAIT_TIMES] = orjson.dumps(trait_times[user], option=orjson.OPT_SORT_KEYS).decode()
        row["loaded_at"] = loaded_at
    return list(state.values())
