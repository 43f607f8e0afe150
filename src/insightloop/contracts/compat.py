"""How big the change between two versions of a contract is, and whether its bump matches.

Each difference is classified, with its reason and place (a JSON pointer into the event;
``*`` stands for any item of an array):

- ADDITION: a new optional property. Earlier events stay valid; the cleaned table gets a new
  column in place, earlier rows read null.
- REVISION: a constraint relaxed (``maximum`` raised, ``minLength`` lowered, an enum value
  added, a ``pattern`` or ``format`` dropped, a required property made optional, ``null``
  allowed, additional properties allowed). Iceberg applies these in place: raising an
  integer's bound past 32 bits is its int → long promotion. (float → double cannot be told
  apart in JSON Schema; decimals are not modelled by our contracts.)
- MODEL: breaking. A property removed or made required, a type changed or narrowed (also
  integer → number: Iceberg cannot promote long to double), a constraint tightened or
  changed, an enum narrowed, additional properties forbidden, or any change of a keyword not
  analysed here (``oneOf``, ``$ref`` …), which is taken as breaking to be safe.

Annotations (``title``, ``description``, ``examples``, ``default``, ``$comment`` …) never matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from insightloop.contracts.schemaver import Level, SchemaVer

ANNOTATIONS = frozenset(
    {"title", "description", "examples", "default", "$comment", "deprecated", "readOnly", "writeOnly"}
)
#: Top-level keys of a contract that are its header, not rules.
HEADER = frozenset({"self", "$id", "$schema"})
#: ``keyword: +1`` when a larger value relaxes (an upper bound), ``-1`` when it tightens.
BOUNDS = {
    "maximum": 1,
    "exclusiveMaximum": 1,
    "maxLength": 1,
    "maxItems": 1,
    "maxProperties": 1,
    "minimum": -1,
    "exclusiveMinimum": -1,
    "minLength": -1,
    "minItems": -1,
    "minProperties": -1,
}
#: Keywords that only restrict values: dropping one relaxes, adding or changing one tightens.
RESTRICTIONS = ("pattern", "format", "const", "multipleOf", "uniqueItems")
ANALYSED = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", *BOUNDS, *RESTRICTIONS}
)
INT32_MAX = 2**31 - 1


class Change(msgspec.Struct, frozen=True):
    """One difference: how big it is, where, and why."""

    level: Level
    pointer: str
    reason: str

    def __str__(self) -> str:
        return f"{self.level.name} at {self.pointer or '/'}: {self.reason}"


@dataclass
class Comparison:
    """Every difference between two versions; ``level`` is the largest."""

    changes: list[Change] = field(default_factory=list)

    @property
    def level(self) -> Level:
        return max((c.level for c in self.changes), default=Level.NONE)

    def add(self, level: Level, where: str, reason: str) -> None:
        self.changes.append(Change(level, where, reason))


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> Comparison:
    """Classify every difference from ``old`` to ``new`` (two contracts' schemas)."""
    out = Comparison()
    strip = (
        {k: v for k, v in old.items() if k not in HEADER},
        {k: v for k, v in new.items() if k not in HEADER},
    )
    _schema(strip[0], strip[1], "", out)
    out.changes.sort(key=lambda c: (-c.level, c.pointer))
    return out


def bump_error(old: SchemaVer, new: SchemaVer, comparison: Comparison) -> str | None:
    """Why the bump ``old`` → ``new`` is too small for the change (None when it is big enough)."""
    bump = old.bump_level(new)
    if bump is None:
        return f"version {new} is not after {old}"
    needed = comparison.level
    if bump >= needed:
        return None
    reasons = "; ".join(str(c) for c in comparison.changes if c.level > bump)
    size = "no" if bump is Level.NONE else _a(bump)
    return (
        f"{old} → {new} is {size} bump, but the change is {_a(needed)} change, "
        f"which needs at least {old.next(needed)}: {reasons}"
    )


def _a(level: Level) -> str:
    return f"{'an' if level.name[0] in 'AEIOU' else 'a'} {level.name}"


def _schema(old: Any, new: Any, where: str, out: Comparison) -> None:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        if old != new:
            level = Level.REVISION if new is True or new == {} else Level.MODEL
            out.add(level, where, f"schema changed from {_text(old)} to {_text(new)}")
        return
    _types(old, new, where, out)
    _object(old, new, where, out)
    if "items" in old or "items" in new:
        _schema(old.get("items", True), new.get("items", True), f"{where}/*", out)
    _enum(old, new, where, out)
    for keyword, direction in BOUNDS.items():
        _bound(keyword, direction, old, new, where, out)
    for keyword in RESTRICTIONS:
        before, after = old.get(keyword), new.get(keyword)
        if before == after:
            continue
        if after is None or (keyword == "uniqueItems" and after is False):
            out.add(Level.REVISION, where, f"`{keyword}` {_text(before)} dropped")
        elif before is None or before is False:
            out.add(Level.MODEL, where, f"`{keyword}` {_text(after)} added: earlier values may break it")
        else:
            out.add(Level.MODEL, where, f"`{keyword}` changed from {_text(before)} to {_text(after)}")
    for keyword in sorted((old.keys() | new.keys()) - ANALYSED - ANNOTATIONS - HEADER):
        if old.get(keyword) != new.get(keyword):
            out.add(Level.MODEL, where, f"`{keyword}` changed (not analysed, so taken as breaking)")


def _type_set(schema: Mapping[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    return {kind} if isinstance(kind, str) else set(kind)


def _types(old: Mapping[str, Any], new: Mapping[str, Any], where: str, out: Comparison) -> None:
    before, after = _type_set(old), _type_set(new)
    if before == after:
        return
    if before is None or after is None:
        out.add(Level.MODEL, where, f"type changed from {_types_text(before)} to {_types_text(after)}")
        return
    lost = {t for t in before - after if not (t == "integer" and "number" in after)}
    if lost:
        out.add(Level.MODEL, where, f"type narrowed: {_types_text(lost)} no longer allowed")
    for added in sorted(after - before):
        if added == "null":
            out.add(Level.REVISION, where, "now nullable (`null` allowed)")
        elif added == "number" and "integer" in before:
            out.add(
                Level.MODEL,
                where,
                "integer → number: Iceberg cannot promote long to double, so it needs a new column",
            )
        else:
            out.add(Level.MODEL, where, f"type widened to {added!r}: the column's type would change")


def _object(old: Mapping[str, Any], new: Mapping[str, Any], where: str, out: Comparison) -> None:
    old_props: Mapping[str, Any] = old.get("properties") or {}
    new_props: Mapping[str, Any] = new.get("properties") or {}
    old_req, new_req = set(old.get("required") or ()), set(new.get("required") or ())
    for name, schema in old_props.items():
        here = f"{where}/{_escape(name)}"
        if name not in new_props:
            out.add(Level.MODEL, here, f"property {name!r} removed")
        else:
            _schema(schema, new_props[name], here, out)
    for name in new_props.keys() - old_props.keys():
        here = f"{where}/{_escape(name)}"
        if name in new_req:
            out.add(Level.MODEL, here, f"new required property {name!r}: earlier events lack it")
        else:
            out.add(Level.ADDITION, here, f"new optional property {name!r}")
    for name in sorted(new_req - old_req):
        if name in old_props:
            out.add(Level.MODEL, f"{where}/{_escape(name)}", f"property {name!r} became required")
        elif name not in new_props:
            out.add(Level.MODEL, f"{where}/{_escape(name)}", f"{name!r} is now required")
    for name in sorted(old_req - new_req):
        out.add(Level.REVISION, f"{where}/{_escape(name)}", f"property {name!r} is now optional")
    before, after = old.get("additionalProperties", True), new.get("additionalProperties", True)
    if before == after:
        return
    if after is True or after == {}:
        out.add(Level.REVISION, where, "additional properties now allowed")
    elif before is True or before == {}:
        out.add(Level.MODEL, where, "additional properties no longer allowed")
    else:
        _schema(before, after, f"{where}/*", out)


def _enum(old: Mapping[str, Any], new: Mapping[str, Any], where: str, out: Comparison) -> None:
    if old.get("enum") == new.get("enum"):
        return
    if "enum" not in new:
        out.add(Level.REVISION, where, "`enum` dropped: any value of the type allowed")
        return
    if "enum" not in old:
        out.add(Level.MODEL, where, f"`enum` {_text(new['enum'])} added: earlier values may break it")
        return
    before = {orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in old["enum"]}
    after = {orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in new["enum"]}
    lost, gained = before - after, after - before
    if lost:
        shown = ", ".join(sorted(v.decode() for v in lost))
        out.add(Level.MODEL, where, f"enum narrowed: {shown} no longer allowed")
    if gained:
        shown = ", ".join(sorted(v.decode() for v in gained))
        out.add(Level.REVISION, where, f"enum widened: {shown} now allowed")


def _bound(
    keyword: str, direction: int, old: Mapping[str, Any], new: Mapping[str, Any], where: str, out: Comparison
) -> None:
    before, after = old.get(keyword), new.get(keyword)
    if before == after:
        return
    if after is None:
        out.add(Level.REVISION, where, f"`{keyword}` {before} dropped")
    elif before is None:
        out.add(Level.MODEL, where, f"`{keyword}` {after} added: earlier values may break it")
    elif (after - before) * direction > 0:
        widening = ""
        if direction > 0 and "integer" in (_type_set(new) or ()) and before <= INT32_MAX < after:
            widening = " (past 32 bits: Iceberg's int → long promotion)"
        out.add(Level.REVISION, where, f"`{keyword}` relaxed from {before} to {after}{widening}")
    else:
        out.add(Level.MODEL, where, f"`{keyword}` tightened from {before} to {after}")


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _text(value: Any) -> str:
    return orjson.dumps(value).decode() if value is not None else "none"


def _types_text(types: set[str] | None) -> str:
    return "any type" if types is None else "/".join(sorted(types))
