"""Arrow's JSON reader, held to reading values as they were written.

``read_objects`` parses newline-joined JSON objects (C++, one core). Arrow guesses types,
and two guesses would change values: strings that look like times become timestamps
(``"2024-05-01"`` and ``"2024-05-01T00:00:00Z"`` alike), so such columns are read again as
strings; and a list column has no JSON text, so ``list_as_json`` writes it.

The schema a call site (``hint``: "context", a table) ended with is given to its next call
as an explicit schema (new keys are still inferred): no guessing for known keys, and no
second pass for known time-like strings. When the data no longer fits it (a key changed
type), the batch is read again without it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

Path = tuple[str, ...]

_MAX_BLOCK = 1 << 26
#: Schemas wider than this are not remembered (keys that are really data, e.g. ids).
_MAX_HINT_FIELDS = 2_000
_MAX_HINTS = 10_000
_hints: dict[str, pa.Schema] = {}


def read_objects(data: bytes, lines: int, hint: str | None = None) -> pa.Table | None:
    """The ``lines`` objects of ``data`` as an Arrow table; None when Arrow cannot read them
    (mixed types, duplicate keys, values that are not objects)."""
    known = _hints.get(hint) if hint is not None else None
    table = None
    if known is not None:
        try:
            table = _read(data, lines, known)
        except pa.ArrowInvalid:
            table = None
    try:
        if table is None:
            table = _read(data, lines)
        times = list(_time_paths(table.schema))
        if times:
            table = _read(data, lines, _as_strings(table.schema, set(times)))
    except pa.ArrowInvalid:
        return None
    if table.num_rows != lines:
        return None
    if hint is not None and len(_hints) < _MAX_HINTS:
        schema = _without_nulls(table.schema)
        if len(schema.names) <= _MAX_HINT_FIELDS:
            _hints[hint] = schema
    return table


def _read(data: bytes, lines: int, schema: pa.Schema | None = None) -> pa.Table:
    """One block when it fits (fastest), read as newline-delimited. A newline inside an
    object (a pretty-printed payload) can only make that fail, never misread: an object cut
    at a newline is not JSON. Then it is read again, told about such newlines (slower)."""
    try:
        return _read_once(data, schema, inner_newlines=len(data) >= _MAX_BLOCK)
    except pa.ArrowInvalid:
        if data.count(b"\n") == lines - 1 and b"\r" not in data:
            raise
        return _read_once(data, schema, inner_newlines=True)


def _read_once(data: bytes, schema: pa.Schema | None, inner_newlines: bool) -> pa.Table:
    block = min(max(len(data) + 1, 1 << 16), _MAX_BLOCK)
    parse = pa_json.ParseOptions(
        newlines_in_values=inner_newlines, explicit_schema=schema, unexpected_field_behavior="infer"
    )
    return pa_json.read_json(
        io.BytesIO(data),
        read_options=pa_json.ReadOptions(use_threads=False, block_size=block),
        parse_options=parse,
    )


def _time_paths(schema: pa.Schema | pa.StructType, prefix: Path = ()) -> Iterator[Path]:
    for field in schema:
        path = (*prefix, field.name)
        if pa.types.is_struct(field.type):
            yield from _time_paths(field.type, path)
        elif pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
            yield path


def _as_strings(schema: pa.Schema, paths: set[Path]) -> pa.Schema:
    def convert(field: pa.Field, path: Path) -> pa.Field:
        if path in paths:
            return field.with_type(pa.string())
        if pa.types.is_struct(field.type):
            return field.with_type(pa.struct([convert(child, (*path, child.name)) for child in field.type]))
        return field

    return pa.schema([convert(field, (field.name,)) for field in schema])


def _without_nulls(schema: pa.Schema) -> pa.Schema:
    """``schema`` without the fields Arrow typed ``null`` (it saw no value to type them by)."""

    def keep(field: pa.Field) -> pa.Field | None:
        if pa.types.is_null(field.type):
            return None
        if pa.types.is_struct(field.type):
            children = [c for c in (keep(child) for child in field.type) if c is not None]
            return field.with_type(pa.struct(children)) if children else None
        if pa.types.is_list(field.type) and pa.types.is_null(field.type.value_type):
            return None
        return field

    return pa.schema([f for f in (keep(field) for field in schema) if f is not None])


_CONTROL = r"[\x00-\x1f]"


def list_as_json(values: pa.ListArray) -> pa.Array | None:
    """A list column of strings, longs, booleans or nulls as compact JSON text, exactly as
    the row-by-row path writes it (``msgspec``); None for other lists (doubles, whose text
    forms differ, nested values, strings with control characters), which take that path."""
    items = values.values
    item_type = items.type
    if pa.types.is_string(item_type) or pa.types.is_large_string(item_type):
        if pc.any(pc.match_substring_regex(items, _CONTROL)).as_py():
            return None
        escaped = pc.replace_substring(pc.replace_substring(items, "\\", "\\\\"), '"', '\\"')
        text = pc.binary_join_element_wise('"', escaped, '"', "")
    elif pa.types.is_int64(item_type) or pa.types.is_boolean(item_type) or pa.types.is_null(item_type):
        text = pc.cast(items, pa.string())
    else:
        return None
    text = pc.if_else(pc.is_null(items), "null", text)
    lists = pa.ListArray.from_arrays(values.offsets, text, mask=pc.is_null(values))
    joined: pa.Array = pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")
    return joined
