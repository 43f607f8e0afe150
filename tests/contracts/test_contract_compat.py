from __future__ import annotations

from typing import Any

import pytest
from contracts_kit import contract_schema

from insightloop.contracts.compat import bump_error, compare
from insightloop.contracts.schemaver import Level, SchemaVer

BASE = {
    "id": {"type": "string", "maxLength": 64},
    "rows": {"type": "integer", "minimum": 0, "maximum": 1000},
    "format": {"type": "string", "enum": ["csv", "xlsx"]},
    "note": {"type": "string", "description": "free text"},
}


def schema(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return contract_schema(
        "x", "1-0-0", properties, ["id", "rows"] if required is None else required, **extra
    )


def change(key: str, **new: Any) -> dict[str, Any]:
    return {**BASE, key: new}


@pytest.mark.parametrize(
    ("new", "level", "pointer", "says"),
    [
        (schema({**BASE, "tag": {"type": "string"}}), Level.ADDITION, "/tag", "new optional property 'tag'"),
        (
            schema(change("rows", type="integer", minimum=0, maximum=2**40)),
            Level.REVISION,
            "/rows",
            "int → long",
        ),
        (
            schema(change("rows", type="integer", minimum=-5, maximum=1000)),
            Level.REVISION,
            "/rows",
            "relaxed",
        ),
        (
            schema(change("format", type="string", enum=["csv", "xlsx", "pdf"])),
            Level.REVISION,
            "/format",
            '"pdf" now allowed',
        ),
        (schema(change("id", type="string")), Level.REVISION, "/id", "`maxLength` 64 dropped"),
        (schema(BASE, ["id"]), Level.REVISION, "/rows", "now optional"),
        (
            schema(change("note", type=["string", "null"], description="free text")),
            Level.REVISION,
            "/note",
            "nullable",
        ),
        (
            schema({k: v for k, v in BASE.items() if k != "note"}),
            Level.MODEL,
            "/note",
            "property 'note' removed",
        ),
        (schema(change("rows", type="string")), Level.MODEL, "/rows", "type narrowed"),
        (
            schema(change("rows", type="number", minimum=0, maximum=1000)),
            Level.MODEL,
            "/rows",
            "cannot promote long to double",
        ),
        (
            schema({**BASE, "tag": {"type": "string"}}, ["id", "rows", "tag"]),
            Level.MODEL,
            "/tag",
            "new required property",
        ),
        (schema(BASE, ["id", "rows", "note"]), Level.MODEL, "/note", "became required"),
        (
            schema(change("format", type="string", enum=["csv"])),
            Level.MODEL,
            "/format",
            '"xlsx" no longer allowed',
        ),
        (schema(change("rows", type="integer", minimum=0, maximum=10)), Level.MODEL, "/rows", "tightened"),
        (schema(change("note", type="string", pattern="^[a-z]+$")), Level.MODEL, "/note", "`pattern"),
        (schema(change("note", anyOf=[{"type": "string"}])), Level.MODEL, "/note", "`anyOf` changed"),
        (schema(BASE, additionalProperties=True), Level.REVISION, "", "additional properties now allowed"),
    ],
)
def test_each_change_is_classified_with_its_reason(
    new: dict[str, Any], level: Level, pointer: str, says: str
) -> None:
    result = compare(schema(BASE), new)
    assert result.level is level, result.changes
    top = [c for c in result.changes if c.level is level]
    assert any(c.pointer == pointer and says in c.reason for c in top), result.changes


def test_annotations_and_the_header_do_not_count() -> None:
    old = schema(BASE)
    new = schema(change("note", type="string", description="other text"), title="Renamed")
    new["self"]["version"] = "1-0-1"
    assert compare(old, new).level is Level.NONE
    assert compare(old, new).changes == []


def test_nested_objects_and_array_items() -> None:
    old = schema(
        {
            "e": {"type": "object", "properties": {"id": {"type": "string"}}},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        [],
    )
    new = schema(
        {
            "e": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "tags": {"type": "array", "items": {"type": "integer"}},
        },
        [],
    )
    pointers = {c.pointer for c in compare(old, new).changes}
    assert pointers == {"/e/id", "/tags/*"}
    assert compare(old, new).level is Level.MODEL


def test_a_bump_must_match_the_change() -> None:
    added = compare(schema(BASE), schema({**BASE, "tag": {"type": "string"}}))
    assert bump_error(SchemaVer(1, 0, 0), SchemaVer(1, 0, 1), added) is None
    assert bump_error(SchemaVer(1, 0, 0), SchemaVer(2, 0, 0), added) is None
    breaking = compare(schema(BASE), schema(change("rows", type="string")))
    error = bump_error(SchemaVer(1, 0, 0), SchemaVer(1, 1, 0), breaking)
    assert error is not None and "MODEL change, which needs at least 2-0-0" in error and "/rows" in error
    assert bump_error(SchemaVer(1, 0, 0), SchemaVer(2, 0, 0), breaking) is None
    assert "not after" in (bump_error(SchemaVer(1, 0, 1), SchemaVer(1, 0, 0), added) or "")
