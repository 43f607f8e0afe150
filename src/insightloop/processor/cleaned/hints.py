"""Column types a contract asks for ("hints"): its JSON Schema's ``properties`` → key path → kind.

A contract describes a track event's ``properties`` (or identify/group ``traits``); every
property it types gets a hint, keyed by its key path as ``objects`` names leaves (raw keys,
nested objects' keys appended: ``{"address": {"properties": {"city": …}}}`` →
``("address", "city")``):

- ``"integer"`` with ``minimum`` ≥ -2^31 and ``maximum`` ≤ 2^31-1 (``exclusiveMinimum`` /
  ``exclusiveMaximum`` count too) → ``int``; any other ``"integer"`` → ``long``;
- ``"number"`` → ``double``; ``"string"`` → ``string``; ``"boolean"`` → ``boolean``;
- a type list with ``"null"`` reads as the same type without it;
- anything else (arrays, objects without ``properties``, ``oneOf``, type lists of two
  types, no ``type``) → no hint: the data decides the column's type, as without a contract.

A hint only chooses the type of a column that does not exist yet, and the one Iceberg
promotion (``int`` → ``long``, see ``reconcile``); values a column cannot hold still go to
its twin (``coltypes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from insightloop.processor.cleaned.coltypes import INT_MAX, INT_MIN, Kind

Path = tuple[str, ...]
Hints = Mapping[Path, Kind]
#: The hints of a table's contract: (message type, event name, MODEL or None) → hints
#: (``contracts.Contracts.hints``).
HintsOf = Callable[[str, str, int | None], Hints]

_SIMPLE = {"number": Kind.DOUBLE, "string": Kind.STRING, "boolean": Kind.BOOLEAN}


def schema_hints(schema: Mapping[str, Any]) -> dict[Path, Kind]:
    """The hints of a contract's schema (an object schema): key path → kind."""
    return dict(_walk(schema, ()))


def _walk(schema: Mapping[str, Any], prefix: Path) -> Iterator[tuple[Path, Kind]]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return
    for key, child in properties.items():
        if not isinstance(child, Mapping):
            continue
        path = (*prefix, key)
        type_name = _single_type(child)
        if type_name == "object":
            yield from _walk(child, path)
            continue
        kind = _kind(type_name, child)
        if kind is not None:
            yield path, kind


def _single_type(schema: Mapping[str, Any]) -> str | None:
    """The schema's one type, ``"null"`` aside; None when it has none or several."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list):
        types = [t for t in declared if t != "null"]
        if len(types) == 1 and isinstance(types[0], str):
            return types[0]
    return None


def _kind(type_name: str | None, schema: Mapping[str, Any]) -> Kind | None:
    if type_name == "integer":
        return Kind.INT if _fits_32_bits(schema) else Kind.LONG
    return _SIMPLE.get(type_name) if type_name is not None else None


def _fits_32_bits(schema: Mapping[str, Any]) -> bool:
    low = _bound(schema, "minimum", "exclusiveMinimum", 1)
    high = _bound(schema, "maximum", "exclusiveMaximum", -1)
    return low is not None and high is not None and low >= INT_MIN and high <= INT_MAX


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str, step: int) -> float | None:
    """The tightest of the inclusive bound and the exclusive one (moved by ``step``)."""
    candidates = []
    for keyword, shift in ((inclusive, 0), (exclusive, step)):
        value = schema.get(keyword)
        if isinstance(value, int | float) and not isinstance(value, bool):
            candidates.append(float(value) + shift)
    if not candidates:
        return None
    return max(candidates) if step > 0 else min(candidates)
