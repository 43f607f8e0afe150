from __future__ import annotations

import json
from pathlib import Path

import pytest
from contracts_kit import WriteContract, contract_schema

from insightloop.contracts.errors import ContractError
from insightloop.contracts.registry import Registry

DRAFT7 = "http://json-schema.org/draft-07/schema#"
PROPS = {"report_id": {"type": "string"}}


@pytest.fixture
def folder(tmp_path: Path, write_contract: WriteContract) -> Path:
    root = tmp_path / "contracts"
    write_contract(root, "track", "report_created", "1-0-0", PROPS, ["report_id"])
    write_contract(root, "track", "report_created", "1-0-1", {**PROPS, "template_id": {"type": "string"}})
    write_contract(root, "track", "report_created", "2-0-0", {"report_id": {"type": "integer"}})
    write_contract(root, "identify", "traits", "1-0-0", {"email": {"type": "string"}})
    (root / "README.md").write_text("not a contract")
    return root


def test_lookup_latest_by_default_and_by_event_name(folder: Path) -> None:
    registry = Registry.load(folder)
    assert len(registry) == 4
    latest = registry.lookup("track", "Report Created")
    assert latest is not None and latest.key == "track/report_created/2-0-0"
    assert registry.lookup("track", "report_created") == latest


def test_lookup_pinned_version_or_model(folder: Path) -> None:
    registry = Registry.load(folder)
    pinned = registry.lookup("track", "report_created", "1-0-0")
    assert pinned is not None and pinned.key == "track/report_created/1-0-0"
    model_one = registry.lookup("track", "report_created", "1")
    assert model_one is not None and model_one.key == "track/report_created/1-0-1"
    assert registry.lookup("track", "report_created", "1-0-7") is None
    assert registry.lookup("track", "report_created", "3") is None
    assert registry.lookup("track", "report_created", "latest") is None
    assert registry.lookup("track", "dashboard_viewed") is None


def test_for_message_reads_the_pin_from_context(folder: Path) -> None:
    registry = Registry.load(folder)
    contract = registry.for_message("track", "Report Created", {"schema_version": "1-0-0"})
    assert contract is not None and contract.key == "track/report_created/1-0-0"
    unpinned = registry.for_message("track", "Report Created", {"locale": "en-US"})
    assert unpinned is not None and unpinned.key == "track/report_created/2-0-0"
    traits = registry.for_message("identify", None, None)
    assert traits is not None and traits.key == "identify/traits/1-0-0"
    assert registry.for_message("group", None) is None


def _bad(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _schema(name: str, version: str, **changes: object) -> str:
    schema = contract_schema(name, version, PROPS)
    schema.update(changes)
    return json.dumps(schema)


@pytest.mark.parametrize(
    ("relative", "text", "says"),
    [
        ("track/x/1-0-0.json", "{not json", "not valid JSON"),
        ("track/x/1.0.0.json", _schema("x", "1.0.0"), "not SchemaVer"),
        ("track/x/1-0-0.json", _schema("y", "1-0-0"), "`self.name` is 'y' but the file's path says 'x'"),
        ("track/x/1-0-0.json", _schema("x", "1-0-1"), "`self.version` is '1-0-1'"),
        ("track/Report Created/1-0-0.json", _schema("Report Created", "1-0-0"), "not snake_case"),
        ("tracks/x/1-0-0.json", _schema("x", "1-0-0"), "unknown kind 'tracks'"),
        ("track/1-0-0.json", _schema("x", "1-0-0"), "<kind>/<name>/"),
        (
            "track/x/1-0-0.json",
            _schema("x", "1-0-0", properties={"a": {"type": "strng"}}),
            "not a valid JSON Schema",
        ),
        (
            "track/x/1-0-0.json",
            _schema("x", "1-0-0", properties={"a": {"pattern": "(["}}),
            "not a valid JSON Schema",
        ),
        ("track/x/1-0-0.json", _schema("x", "1-0-0", type="array"), "`type` must be 'object'"),
        ("track/x/1-0-0.json", _schema("x", "1-0-0", **{"$schema": DRAFT7}), "2020-12"),
        ("track/x/1-0-0.json", "[]", "must be a JSON object"),
    ],
)
def test_a_bad_file_is_named_in_the_error(tmp_path: Path, relative: str, text: str, says: str) -> None:
    root = tmp_path / "contracts"
    _bad(root, "track/good/1-0-0.json", _schema("good", "1-0-0"))
    bad = _bad(root, relative, text)
    with pytest.raises(ContractError) as caught:
        Registry.load(root)
    assert str(bad) in str(caught.value)
    assert says in str(caught.value)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="does not exist"):
        Registry.load(tmp_path / "nowhere")
