from __future__ import annotations

import pytest

from insightloop.contracts.errors import ContractError
from insightloop.contracts.schemaver import Level, SchemaVer


def test_parse_and_print() -> None:
    assert SchemaVer.parse("1-0-2") == SchemaVer(1, 0, 2)
    assert str(SchemaVer.parse("12-3-40")) == "12-3-40"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("1.0.0", "dashes"),
        ("1-0", "MODEL-REVISION-ADDITION"),
        ("01-0-0", "MODEL-REVISION-ADDITION"),
        ("0-1-0", "MODEL starts at 1"),
        ("1-0-0-1", "MODEL-REVISION-ADDITION"),
        ("v1-0-0", "MODEL-REVISION-ADDITION"),
        ("", "MODEL-REVISION-ADDITION"),
    ],
)
def test_bad_versions_say_why(text: str, says: str) -> None:
    with pytest.raises(ContractError, match=says):
        SchemaVer.parse(text)


def test_versions_order_numerically() -> None:
    texts = ["1-0-10", "2-0-0", "1-0-9", "1-1-0", "1-0-0", "10-0-0"]
    assert [str(v) for v in sorted(map(SchemaVer.parse, texts))] == [
        "1-0-0",
        "1-0-9",
        "1-0-10",
        "1-1-0",
        "2-0-0",
        "10-0-0",
    ]


def test_bump_levels() -> None:
    v = SchemaVer(1, 2, 3)
    assert v.bump_level(SchemaVer(1, 2, 4)) is Level.ADDITION
    assert v.bump_level(SchemaVer(1, 3, 0)) is Level.REVISION
    assert v.bump_level(SchemaVer(2, 0, 0)) is Level.MODEL
    assert v.bump_level(v) is Level.NONE
    assert v.bump_level(SchemaVer(1, 2, 2)) is None
    assert str(v.next(Level.MODEL)) == "2-0-0"
    assert str(v.next(Level.REVISION)) == "1-3-0"
    assert str(v.next(Level.ADDITION)) == "1-2-4"
