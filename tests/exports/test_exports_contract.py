"""Export contracts: the registry checks their own keys; columns get their types; the repo's
contracts/export load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from exports_kit import contract

from insightloop.contracts.errors import ContractError
from insightloop.contracts.registry import Registry
from insightloop.exports.contract import lookup

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def write(tmp_path: Path, doc: dict[str, object]) -> Path:
    folder = tmp_path / "export" / "contacts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "1-0-0.json").write_text(json.dumps(doc))
    return tmp_path


def test_types_key_and_options(tmp_path: Path) -> None:
    found = lookup(Registry.load(write(tmp_path, contract(encoding="latin-1"))), "contacts")
    assert found is not None
    assert {name: kind.sql for name, kind in found.columns.items()} == {
        "id": "VARCHAR",
        "email": "VARCHAR",
        "score": "BIGINT",
        "amount": "DOUBLE",
        "signup": "DATE",
        "updated_at": "TIMESTAMPTZ",
    }
    assert (found.primary_key, found.updated_at, found.table) == (
        ("id",),
        "updated_at",
        "cleaned.crm_contacts",
    )
    assert found.must_have == {"id", "updated_at"} and found.csv.encoding == "latin-1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"primary_key": []}, "primary_key"),
        ({"updated_at": "modified"}, "'modified'"),
        ({"subject_keys": {"email": "mail"}}, "'mail'"),
    ],
)
def test_bad_export_keys_are_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    doc = contract()
    doc["x-insightloop-export"] = {**doc["x-insightloop-export"], **change}
    with pytest.raises(ContractError, match=message):
        Registry.load(write(tmp_path, doc))


def test_the_repository_export_contracts_load() -> None:
    found = lookup(Registry.load(REPO_CONTRACTS), "contacts")
    assert found is not None and found.primary_key == ("contact_id",)


def test_a_proposed_contract_loads_its_file(tmp_path: Path) -> None:
    from exports_kit import Lake, counts, csv_text, files, landing_file, make_config, row

    from insightloop.exports.infer import propose

    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(row(i) for i in range(1, 51)))
    (file,) = files(path)
    proposal = propose(file)
    extra = proposal["x-insightloop-export"]
    assert (extra["primary_key"], extra["updated_at"], extra["subject_keys"]) == (
        ["id"],
        "updated_at",
        {"email": "email"},
    )
    assert proposal["properties"]["score"] == {"type": "integer"}
    assert proposal["properties"]["signup"] == {"type": "string", "format": "date"}
    lake = Lake(make_config(tmp_path, proposal))
    assert lake.load(path).status == "loaded"
    assert lake.counts() == counts(50, 0, 50, 0)
