"""PostgreSQL text-format values → the JSON values of ``changes.ChangeEvent``.

The stream (pgoutput sends text) and the snapshot (which reads ``column::text``) both go
through ``to_json``, so the same stored value always gives the same JSON value, and hence
the same snapshot event id. Conversions, by the column's type OID: integers and floats as
numbers (NaN and infinities as strings), booleans, ``numeric`` as its decimal string,
``timestamptz`` as ISO-8601 in UTC, ``timestamp``/``date``/``time`` as ISO-8601 strings,
``bytea`` as base64, json/jsonb parsed, one- and many-dimensional arrays of these as JSON
arrays, anything else (text, uuid, enums, intervals, domains…) as its text.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson


def _int(text: str) -> Any:
    return int(text)


def _float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else text


def _bool(text: str) -> Any:
    return text == "t"


def _json(text: str) -> Any:
    return orjson.loads(text)


def _bytea(text: str) -> Any:
    if text.startswith("\\x"):
        return base64.b64encode(bytes.fromhex(text[2:])).decode()
    return text  # escape format (bytea_output = escape): left as sent


def _timestamptz(text: str) -> Any:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text  # infinity, BC dates, years past 9999
    if moment.tzinfo is None:
        return text
    return moment.astimezone(UTC).isoformat()


def _timestamp(text: str) -> Any:
    return text.replace(" ", "T", 1) if text[:1].isdigit() else text


def _text(text: str) -> Any:
    return text


_SCALARS: dict[int, Callable[[str], Any]] = {
    16: _bool,
    17: _bytea,
    20: _int,
    21: _int,
    23: _int,
    26: _int,
    114: _json,
    700: _float,
    701: _float,
    1114: _timestamp,
    1184: _timestamptz,
    3802: _json,
}

#: Array type OID → element type OID (the common ones; other arrays stay text).
ARRAYS: dict[int, int] = {
    1000: 16,
    1001: 17,
    1005: 21,
    1007: 23,
    1016: 20,
    1028: 26,
    1009: 25,
    1014: 1042,
    1015: 1043,
    1021: 700,
    1022: 701,
    1231: 1700,
    1182: 1082,
    1183: 1083,
    1115: 1114,
    1185: 1184,
    2951: 2950,
    199: 114,
    3807: 3802,
}


def to_json(type_oid: int, text: str | None) -> Any:
    """The JSON value of ``text``, PostgreSQL's text output for a value of type ``type_oid``."""
    if text is None:
        return None
    element = ARRAYS.get(type_oid)
    if element is not None:
        convert = _SCALARS.get(element, _text)
        return _convert_nested(parse_array(text), convert)
    return _SCALARS.get(type_oid, _text)(text)


def _convert_nested(items: list[Any], convert: Callable[[str], Any]) -> list[Any]:
    return [
        _convert_nested(item, convert) if isinstance(item, list) else None if item is None else convert(item)
        for item in items
    ]


def parse_array(text: str) -> list[Any]:
    """PostgreSQL's array text format (``{1,2}``, ``{"a b",NULL}``, ``{{1,2},{3,4}}``,
    ``[0:1]={…}``) → nested lists of element texts (None for NULL)."""
    if text.startswith("["):
        text = text[text.index("=") + 1 :]
    items, end = _parse_level(text, 0)
    if end != len(text):
        raise ValueError(f"trailing characters in array literal at {end}: {text[:80]!r}")
    return items


def _parse_level(text: str, at: int) -> tuple[list[Any], int]:
    if text[at] != "{":
        raise ValueError(f"array literal expected '{{' at {at}: {text[:80]!r}")
    at += 1
    items: list[Any] = []
    if text[at] == "}":
        return items, at + 1
    while True:
        char = text[at]
        if char == "{":
            nested, at = _parse_level(text, at)
            items.append(nested)
        elif char == '"':
            out: list[str] = []
            at += 1
            while text[at] != '"':
                if text[at] == "\\":
                    at += 1
                out.append(text[at])
                at += 1
            items.append("".join(out))
            at += 1
        else:
            end = at
            while text[end] not in ",}":
                end += 1
            raw = text[at:end].strip()
            items.append(None if raw == "NULL" else raw)
            at = end
        if text[at] == ",":
            at += 1
            continue
        if text[at] == "}":
            return items, at + 1
        raise ValueError(f"array literal: unexpected {text[at]!r} at {at}: {text[:80]!r}")
