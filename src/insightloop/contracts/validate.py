"""Validating events against a contract: per event, OK or every violation, never an exception.

A violation names the place (a JSON pointer into the validated object, RFC 6901), the rule
(the JSON Schema keyword that failed: ``type``, ``required``, ``additionalProperties`` …),
a message for people and the rule's place in the schema. A missing required property and an
unexpected property point at the property itself (``/report_id``), not at its parent.

Instances may be decoded objects or raw JSON: ``bytes``, ``str``, or a message's undecoded
``properties`` as ``msgspec.Raw`` (the empty Raw of an absent object means ``{}``).
jsonschema-rs validates Python objects only, so raw JSON is decoded here with orjson first
(see ``benchmarks/bench_contracts.py`` for what each costs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import jsonschema_rs
import msgspec
import orjson

from insightloop.contracts.registry import Contract

#: At most this many violations are kept per event (a wholly wrong event can have hundreds).
MAX_VIOLATIONS = 20
#: What a valid event gets.
OK: tuple[Violation, ...] = ()


class Violation(msgspec.Struct, frozen=True):
    """One broken rule: where (``pointer``), which rule (``keyword``), why (``message``)."""

    pointer: str
    keyword: str
    message: str
    schema_path: str = ""

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.keyword}: {self.message}"


def pointer(path: Iterable[str | int]) -> str:
    """A JSON pointer (RFC 6901) from path parts: ``["a/b", 0]`` → ``/a~1b/0``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def validate(contract: Contract, instance: Any) -> tuple[Violation, ...]:
    """``OK`` (empty) or the violations of one event's object (decoded, or raw JSON bytes/str)."""
    if isinstance(instance, msgspec.Raw):
        # A message's undecoded object; the empty Raw stands for an absent one (no properties).
        instance = memoryview(instance) if len(instance) else b"{}"
    if isinstance(instance, bytes | bytearray | memoryview | str):
        try:
            instance = orjson.loads(instance)
        except orjson.JSONDecodeError as exc:
            return (Violation("", "json", f"not valid JSON: {exc}"),)
    validator = contract.validator
    try:
        if validator.is_valid(instance):
            return OK
        return _violations(validator, instance)
    except (ValueError, TypeError) as exc:  # a Python object JSON cannot hold (a set, bytes …)
        return (Violation("", "json", f"not a JSON value: {exc}"),)


def validate_batch(contract: Contract, instances: Sequence[Any]) -> list[tuple[Violation, ...]]:
    """Per instance, in order: ``OK`` or its violations. Valid neighbours of a bad event stay OK.

    Decoded dicts take a fast path (one ``is_valid`` call each, no Python wrapper per event).
    """
    is_valid = contract.validator.is_valid
    out: list[tuple[Violation, ...]] = []
    for instance in instances:
        if type(instance) is dict:
            try:
                if is_valid(instance):
                    out.append(OK)
                    continue
            except (ValueError, TypeError):
                pass
        out.append(validate(contract, instance))
    return out


def _violations(validator: jsonschema_rs.Validator, instance: Any) -> tuple[Violation, ...]:
    found: list[Violation] = []
    for error in validator.iter_errors(instance):
        found.extend(_from_error(error))
        if len(found) >= MAX_VIOLATIONS:
            break
    return tuple(found[:MAX_VIOLATIONS])


def _from_error(error: jsonschema_rs.ValidationError) -> list[Violation]:
    keyword = error.kind.name
    where = list(error.instance_path)
    rule = pointer(error.schema_path)
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required):
        missing = str(error.kind.as_dict().get("property", ""))
        return [Violation(pointer([*where, missing]), keyword, error.message, rule)]
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        unexpected = error.kind.unexpected
        return [
            Violation(pointer([*where, name]), keyword, f"property {name!r} is not in the contract", rule)
            for name in unexpected
        ]
    return [Violation(pointer(where), keyword, error.message, rule)]
