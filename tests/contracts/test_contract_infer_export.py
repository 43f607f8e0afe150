"""``insightloop contracts infer --export FILE``: an export contract proposed from a file."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from insightloop.cli.main import app
from insightloop.contracts.registry import EXPORT_KEY, Registry
from insightloop.exports.generate import HEADER, daily_exports

runner = CliRunner()


@pytest.fixture
def export_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("INSIGHTLOOP_CONFIG", raising=False)
    monkeypatch.setenv("INSIGHTLOOP_DATA_DIR", str(tmp_path / "data"))
    [day] = daily_exports(tmp_path / "landing", days=1, contacts=200, mess=0.0, gzip_last=False)
    return day.path


def proposal(output: str) -> tuple[str, dict[str, Any]]:
    """The printed file name and the proposed contract."""
    first, _, text = output.partition("\n")
    document: dict[str, Any] = orjson.loads(text)
    return first, document


def test_a_file_gives_a_contract_the_registry_accepts(export_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["contracts", "infer", "--export", str(export_file)])
    assert result.exit_code == 0, result.output
    where, schema = proposal(result.stdout)
    assert where.startswith("// contracts/export/contacts/1-0-0.json")
    assert schema["self"]["name"] == "contacts"
    assert list(schema["properties"]) == HEADER
    extra = schema[EXPORT_KEY]
    assert extra["primary_key"] == ["contact_id"]
    assert extra["updated_at"] == "updated_at"
    assert extra["subject_keys"] == {"email": "email"}
    assert schema["properties"]["employees"]["type"] == "integer"
    assert schema["properties"]["updated_at"]["format"] == "date-time"
    assert "contact_id" in schema["required"]
    # Committed as printed, it is a valid export contract.
    path = tmp_path / "contracts" / "export" / "contacts" / "1-0-0.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(orjson.dumps(schema))
    registry = Registry.load(tmp_path / "contracts")
    assert [(c.kind, c.name) for c in registry] == [("export", "contacts")]


def test_entity_primary_key_and_updated_at_can_be_given(export_file: Path) -> None:
    args = ["--entity", "CRM People", "--primary-key", "email", "--primary-key", "company_id"]
    result = runner.invoke(
        app, ["contracts", "infer", "--export", str(export_file), *args, "--updated-at", "created_at"]
    )
    assert result.exit_code == 0, result.output
    where, schema = proposal(result.stdout)
    assert where.startswith("// contracts/export/crm_people/1-0-0.json")
    assert schema[EXPORT_KEY]["primary_key"] == ["email", "company_id"]
    assert schema[EXPORT_KEY]["updated_at"] == "created_at"
    assert {"email", "company_id"} <= set(schema["required"])


def test_a_gzip_file_is_read(export_file: Path) -> None:
    packed = export_file.with_name(export_file.name + ".gz")
    packed.write_bytes(gzip.compress(export_file.read_bytes()))
    result = runner.invoke(app, ["contracts", "infer", "--export", str(packed)])
    assert result.exit_code == 0, result.output
    assert proposal(result.stdout)[1][EXPORT_KEY]["primary_key"] == ["contact_id"]


def test_a_file_that_cannot_be_read_exits_1_and_says_why(tmp_path: Path, export_file: Path) -> None:
    missing = runner.invoke(app, ["contracts", "infer", "--export", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1
    assert "nope.csv: no such file" in missing.stderr
    truncated = tmp_path / "contacts_2026-11-25.csv.gz"
    truncated.write_bytes(gzip.compress(export_file.read_bytes())[:200])
    broken = runner.invoke(app, ["contracts", "infer", "--export", str(truncated)])
    assert broken.exit_code == 1, broken.output
    assert "cannot be read" in broken.stderr
    odd = tmp_path / "contacts.xlsx"
    odd.write_bytes(b"PK")
    unknown = runner.invoke(app, ["contracts", "infer", "--export", str(odd)])
    assert unknown.exit_code == 1
    assert "not an export file" in unknown.stderr


def test_a_key_column_the_file_lacks_exits_1(export_file: Path) -> None:
    result = runner.invoke(app, ["contracts", "infer", "--export", str(export_file), "--primary-key", "id"])
    assert result.exit_code == 1
    assert "has no column 'id'" in result.stderr


def test_export_options_do_not_mix_with_event_samples(export_file: Path) -> None:
    both = runner.invoke(app, ["contracts", "infer", "--export", str(export_file), "--from-lake"])
    assert both.exit_code == 2
    stray = runner.invoke(app, ["contracts", "infer", "--from-lake", "--entity", "contacts"])
    assert stray.exit_code == 2
    assert "go with --export" in stray.stderr


def test_a_messy_file_still_gives_a_proposal(tmp_path: Path) -> None:
    [day] = daily_exports(tmp_path / "landing", days=1, contacts=300, mess=0.01, gzip_last=False)
    assert day.bad > 0
    result = runner.invoke(app, ["contracts", "infer", "--export", str(day.path)])
    assert result.exit_code == 0, result.output
    assert proposal(result.stdout)[1][EXPORT_KEY]["primary_key"] == ["contact_id"]
