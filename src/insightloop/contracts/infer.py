"""``contracts infer``: propose contracts from sample events, for a person to review.

Per contract (a track event's properties by event name, identify's and group's traits, a
page's or screen's properties by name): every property seen, with its JSON types (``integer``
unless some sample has a fraction, then ``number``), a ``format`` when every sample string
is one (``date-time``, ``date``, ``email``, ``uri``), nested objects and arrays inferred the
same way, ``required`` = present (and not null) in every sample, and optionally an ``enum``
for strings with few distinct values (seen in enough samples). The proposal is version ``1-0-0`` with
``additionalProperties: false`` and validates every sample it was inferred from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from insightloop.contracts.errors import ContractError
from insightloop.contracts.registry import DRAFT, VENDOR, contract_name

#: Where each message type keeps the object its contract describes.
OBJECT_FIELD = {"track": "properties", "page": "properties", "screen": "properties"}
OBJECT_FIELD.update(identify="traits", group="traits")

_FORMATS = (
    ("date-time", re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")),
    ("date", re.compile(r"\d{4}-\d\d-\d\d")),
    ("email", re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")),
    ("uri", re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")),
)
#: An enum is proposed only from at least this many samples (and two per value).
ENUM_MIN_SAMPLES = 10
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


@dataclass
class Samples:
    """Sample objects grouped by contract (``kind``, ``name``), and lines that were skipped."""

    objects: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    skipped: int = 0

    def add_message(self, message: Mapping[str, Any]) -> None:
        kind = message.get("type")
        if not isinstance(kind, str) or kind not in OBJECT_FIELD:
            self.skipped += 1
            return
        name = contract_name(kind, message.get("event") if kind == "track" else message.get("name"))
        found = message.get(OBJECT_FIELD[kind])
        if not name or not isinstance(found, dict | None):
            self.skipped += 1
            return
        self.objects.setdefault((kind, name), []).append(found or {})


def read_samples(path: Path | str) -> Samples:
    """Segment messages from a JSON-lines file (a line may also be a ``{"batch": [...]}`` body)."""
    path = Path(path)
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ContractError(f"cannot read samples {path}: {exc}") from exc
    samples = Samples()
    for line in lines:
        if not line.strip():
            continue
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            samples.skipped += 1
            continue
        batch = message.get("batch") if isinstance(message, dict) else None
        for one in batch if isinstance(batch, list) else [message]:
            if isinstance(one, dict):
                samples.add_message(one)
            else:
                samples.skipped += 1
    return samples


def samples_of(messages: Iterable[Mapping[str, Any]]) -> Samples:
    """Samples from decoded Segment messages."""
    samples = Samples()
    for message in messages:
        samples.add_message(message)
    return samples


def infer_contracts(samples: Samples, enum_max: int = 0) -> dict[tuple[str, str], dict[str, Any]]:
    """A proposed contract per (kind, name); ``enum_max`` > 0 adds enums of that many values at most."""
    return {
        (kind, name): infer_contract(kind, name, objects, enum_max)
        for (kind, name), objects in sorted(samples.objects.items())
    }


def infer_contract(kind: str, name: str, objects: list[dict[str, Any]], enum_max: int = 0) -> dict[str, Any]:
    """A version ``1-0-0`` contract for ``kind``/``name`` that every one of ``objects`` meets."""
    body = infer_schema(objects, enum_max)
    return {
        "$schema": DRAFT,
        "self": {"vendor": VENDOR, "name": name, "format": "jsonschema", "version": "1-0-0"},
        "description": f"Proposed from {len(objects)} sample(s) of {kind} {name}: review before committing.",
        **body,
    }


def to_text(schema: Mapping[str, Any]) -> str:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode() + "\n"


def infer_schema(values: list[Any], enum_max: int = 0) -> dict[str, Any]:
    """A schema every one of ``values`` meets."""
    types: list[str] = []
    for value in values:
        kind = _json_type(value)
        if kind not in types:
            types.append(kind)
    if "integer" in types and "number" in types:
        types.remove("integer")
    schema: dict[str, Any] = {"type": types[0] if len(types) == 1 else sorted(types)}
    if "object" in types:
        schema.update(_object([v for v in values if isinstance(v, dict)], enum_max))
    if "array" in types:
        items = [item for v in values if isinstance(v, list) for item in v]
        if items:
            schema["items"] = infer_schema(items, enum_max)
    if "string" in types:
        strings = [v for v in values if isinstance(v, str)]
        fmt = next((f for f, pattern in _FORMATS if all(pattern.fullmatch(s) for s in strings)), None)
        distinct = sorted(set(strings))
        if fmt is not None:
            schema["format"] = fmt
        elif (
            0 < len(distinct) <= enum_max
            and len(strings) >= max(ENUM_MIN_SAMPLES, 2 * len(distinct))
            and types == ["string"]
        ):
            schema["enum"] = distinct
    return schema


def _object(objects: list[dict[str, Any]], enum_max: int) -> dict[str, Any]:
    names: list[str] = []
    for obj in objects:
        names.extend(k for k in obj if k not in names)
    properties = {
        name: infer_schema([obj[name] for obj in objects if name in obj], enum_max) for name in names
    }
    required = [n for n in names if all(obj.get(n) is not None for obj in objects)]
    schema: dict[str, Any] = {"properties": properties}
    if required:
        schema["required"] = sorted(required)
    schema["additionalProperties"] = False
    return schema


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for python, name in _JSON_TYPES:
        if isinstance(value, python):
            return name
    return "array" if isinstance(value, list) else "object"
