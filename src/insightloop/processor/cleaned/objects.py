"""JSON objects (``properties``, ``traits``, ``context``) of many events → typed leaf columns.

The fast path joins the objects' exact bytes with newlines and parses them all at once with
Arrow's JSON reader (``arrowjson``: C++, strings kept strings, lists as JSON text), then
flattens nested objects into one leaf per key path. Lists ``arrowjson`` cannot write and
integers beyond 2^53 Arrow put in a double are taken from the JSON again, one row at a
time, for that key only; a double column is split into its whole numbers and the rest
(see ``coltypes``).

When Arrow cannot read the group at all (a key holding a number in one event and a string
in another, a duplicate key, an object that is not an object), the group is parsed one
row at a time with orjson: slower, same result. A row whose value is neither an object nor
null is reported in ``not_objects`` and contributes no leaves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from insightloop.processor.cleaned.arrowjson import list_as_json, read_objects
from insightloop.processor.cleaned.coltypes import (
    ARROW_TYPES,
    Kind,
    classify,
    kind_of_arrow,
    needs_exact_numbers,
    split_numbers,
)

Path = tuple[str, ...]
JsonBytes = bytes | msgspec.Raw


@dataclass(frozen=True, slots=True)
class Leaf:
    """One key path's values of one kind, aligned with the parsed rows (null elsewhere)."""

    path: Path
    kind: Kind
    values: pa.Array

    def take(self, indices: pa.Array) -> Leaf:
        return Leaf(self.path, self.kind, self.values.take(indices))

    @property
    def empty(self) -> bool:
        return bool(self.values.null_count == len(self.values))


@dataclass(slots=True)
class Parsed:
    leaves: list[Leaf] = field(default_factory=list)
    #: Rows whose value was not a JSON object (nor null).
    not_objects: list[int] = field(default_factory=list)


_EMPTY = b"{}"


def parse_objects(raws: Sequence[JsonBytes | None], hint: str | None = None) -> Parsed:
    """Leaves of the JSON objects ``raws`` (None, empty or ``null``: an event without one;
    msgspec gives an absent ``Raw`` field as an empty ``Raw``). ``hint`` names the call
    site, whose last schema speeds up the next parse (``arrowjson``)."""
    if not raws:
        return Parsed()
    fast = _parse_fast(raws, hint)
    if fast is not None:
        return Parsed(fast)
    return _parse_slow(raws)


def _parse_fast(raws: Sequence[JsonBytes | None], hint: str | None) -> list[Leaf] | None:
    data = b"\n".join([raw or _EMPTY for raw in raws])
    table = read_objects(data, len(raws), hint)
    if table is None:
        return None
    again: list[Path] = []
    leaves = list(_flatten(table, again))
    if again:
        leaves.extend(_extract(raws, again))
    return leaves


def _flatten(table: pa.Table, again: list[Path]) -> Iterator[Leaf]:
    for name, column in zip(table.column_names, table.columns, strict=True):
        yield from _leaves((name,), column.combine_chunks(), again)


def _leaves(path: Path, values: pa.Array, again: list[Path]) -> Iterator[Leaf]:
    arrow_type = values.type
    if pa.types.is_struct(arrow_type):
        for child_field, child in zip(arrow_type, values.flatten(), strict=True):
            yield from _leaves((*path, child_field.name), child, again)
        return
    if pa.types.is_null(arrow_type) or values.null_count == len(values):
        return
    kind = kind_of_arrow(arrow_type)
    if kind is None:
        text = list_as_json(values) if pa.types.is_list(arrow_type) else None
        if text is None:
            again.append(path)  # other lists, and anything else Arrow may invent: re-read exactly
            return
        kind, values = Kind.STRING, text
    if kind == Kind.DOUBLE:
        if needs_exact_numbers(values):
            again.append(path)
            return
        for number_kind, numbers in split_numbers(values):
            yield Leaf(path, number_kind, numbers)
        return
    if pa.types.is_large_string(arrow_type):
        values = values.cast(pa.string())
    yield Leaf(path, kind, values)


def _loads(raw: JsonBytes) -> Any:
    # msgspec keeps integers of any size exact (orjson makes big ones floats); the standard
    # library reads what msgspec refuses (numbers beyond a double's range).
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return json.loads(bytes(raw))


def _extract(raws: Sequence[JsonBytes | None], paths: list[Path]) -> Iterator[Leaf]:
    """Leaves for ``paths``, taken from the JSON one row at a time."""
    objects = [_loads(raw) if raw else None for raw in raws]
    n = len(raws)
    for path in paths:
        columns: dict[Kind, list[Any]] = {}
        for row, obj in enumerate(objects):
            value = obj
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            if value is None or isinstance(value, dict):
                continue
            kind, stored = classify(value)
            columns.setdefault(kind, [None] * n)[row] = stored
        for kind, values in columns.items():
            yield Leaf(path, kind, pa.array(values, ARROW_TYPES[kind]))


def _parse_slow(raws: Sequence[JsonBytes | None]) -> Parsed:
    n = len(raws)
    columns: dict[tuple[Path, Kind], list[Any]] = {}
    not_objects: list[int] = []
    for row, raw in enumerate(raws):
        if not raw:
            continue
        obj = _loads(raw)
        if obj is None:
            continue
        if not isinstance(obj, dict):
            not_objects.append(row)
            continue
        _walk(obj, (), row, columns, n)
    leaves = [
        Leaf(path, kind, pa.array(values, ARROW_TYPES[kind])) for (path, kind), values in columns.items()
    ]
    return Parsed(leaves, not_objects)


def _walk(
    obj: dict[str, Any], prefix: Path, row: int, columns: dict[tuple[Path, Kind], list[Any]], n: int
) -> None:
    for key, value in obj.items():
        if value is None:
            continue
        path = (*prefix, key)
        if isinstance(value, dict):
            _walk(value, path, row, columns, n)
            continue
        kind, stored = classify(value)
        values = columns.get((path, kind))
        if values is None:
            values = columns[(path, kind)] = [None] * n
        values[row] = stored


def present(leaves: Sequence[Leaf], n: int) -> dict[Path, pa.Array]:
    """For each key path, which rows hold a value there (any kind)."""
    out: dict[Path, pa.Array] = {}
    for leaf in leaves:
        valid = leaf.values.is_valid()
        seen = out.get(leaf.path)
        out[leaf.path] = valid if seen is None else pc.or_(seen, valid)
    return out
