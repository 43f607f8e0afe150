from __future__ import annotations

from pathlib import Path

import msgspec
import orjson
import pytest
from contracts_kit import WriteContract

from insightloop.contracts.registry import Contract, Registry
from insightloop.contracts.validate import OK, Violation, validate, validate_batch
from insightloop.segment.message import Message


@pytest.fixture
def contract(tmp_path: Path, write_contract: WriteContract) -> Contract:
    root = tmp_path / "contracts"
    write_contract(
        root,
        "track",
        "export_downloaded",
        "1-0-0",
        {
            "format": {"type": "string", "enum": ["csv", "xlsx"]},
            "rows": {"type": "integer", "minimum": 0},
            "report_id": {"type": "string"},
            "sent_at": {"type": "string", "format": "date-time"},
            "filter": {
                "type": "object",
                "properties": {"a/b": {"type": "boolean"}},
                "additionalProperties": False,
            },
        },
        ["format", "report_id", "rows"],
    )
    found = Registry.load(root).lookup("track", "Export Downloaded")
    assert found is not None
    return found


GOOD = {"format": "csv", "rows": 10, "report_id": "rpt_1"}


def test_valid_events_pass_as_objects_bytes_and_text(contract: Contract) -> None:
    assert validate(contract, GOOD) == OK
    assert validate(contract, orjson.dumps(GOOD)) == OK
    assert validate(contract, orjson.dumps(GOOD).decode()) == OK
    message = msgspec.json.decode(orjson.dumps({"properties": GOOD}), type=Message)
    assert validate(contract, message.properties) == OK
    with_optional = {**GOOD, "sent_at": "2026-11-26T10:00:00.000Z", "filter": {"a/b": True}}
    assert validate(contract, with_optional) == OK


def test_a_batch_reports_each_bad_event_precisely_and_its_neighbours_pass(contract: Contract) -> None:
    batch: list[object] = [
        GOOD,
        {**GOOD, "rows": "ten"},
        {"format": "csv", "rows": 1},
        {**GOOD, "extra": 1},
        orjson.dumps(GOOD),
        {**GOOD, "format": "pdf", "rows": -1},
        {**GOOD, "sent_at": "yesterday"},
        {**GOOD, "filter": {"a/b": "yes"}},
        b"{not json",
        GOOD,
    ]
    results = validate_batch(contract, batch)
    assert len(results) == len(batch)
    assert results[0] == OK and results[4] == OK and results[9] == OK
    assert [(v.pointer, v.keyword) for v in results[1]] == [("/rows", "type")]
    assert "integer" in results[1][0].message
    assert results[1][0].schema_path == "/properties/rows/type"
    assert [(v.pointer, v.keyword) for v in results[2]] == [("/report_id", "required")]
    assert [(v.pointer, v.keyword) for v in results[3]] == [("/extra", "additionalProperties")]
    assert sorted((v.pointer, v.keyword) for v in results[5]) == [("/format", "enum"), ("/rows", "minimum")]
    assert [(v.pointer, v.keyword) for v in results[6]] == [("/sent_at", "format")]
    assert [(v.pointer, v.keyword) for v in results[7]] == [("/filter/a~1b", "type")]
    assert [v.keyword for v in results[8]] == ["json"]


def test_a_message_without_properties_is_checked_as_empty(contract: Contract) -> None:
    message = msgspec.json.decode(b'{"type": "track"}', type=Message)
    found = validate(contract, message.properties)
    assert sorted(v.pointer for v in found) == ["/format", "/report_id", "/rows"]


def test_never_raises_for_data_json_cannot_hold(contract: Contract) -> None:
    assert validate(contract, None)[0].keyword == "type"
    assert validate(contract, [1, 2])[0].keyword == "type"
    assert validate(contract, {**GOOD, "rows": {1, 2}})[0].keyword == "json"


def test_violations_are_capped_and_readable(contract: Contract) -> None:
    wrong = {f"p{i}": i for i in range(100)}
    found = validate(contract, wrong)
    assert 0 < len(found) <= 20
    assert str(Violation("/rows", "type", "bad")) == "/rows: type: bad"
