from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from contracts_kit import WriteContract, git
from typer.testing import CliRunner

from insightloop.cli.contracts import contracts_app

app = typer.Typer()
app.add_typer(contracts_app, name="contracts")
runner = CliRunner()


@pytest.fixture
def repo(tmp_path: Path, write_contract: WriteContract) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    write_contract(tmp_path / "contracts", "track", "report_created", "1-0-0", {"rows": {"type": "integer"}})
    git(tmp_path, "add", "contracts")
    git(tmp_path, "commit", "-q", "-m", "contracts")
    return tmp_path


def test_list(repo: Path, write_contract: WriteContract) -> None:
    write_contract(repo / "contracts", "track", "report_created", "1-0-1", {"rows": {"type": "integer"}})
    result = runner.invoke(app, ["contracts", "list", "--dir", str(repo / "contracts")])
    assert result.exit_code == 0, result.output
    assert "report_created" in result.output and "1-0-0, 1-0-1" in result.output


def test_check_passes_then_fails_on_a_breaking_change_without_a_major_bump(
    repo: Path, write_contract: WriteContract
) -> None:
    args = ["contracts", "check", "--dir", str(repo / "contracts")]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    write_contract(repo / "contracts", "track", "report_created", "1-0-1", {"rows": {"type": "string"}})
    bad = runner.invoke(app, args)
    assert bad.exit_code == 1
    assert "1-0-1.json" in bad.output and "needs at least 2-0-0" in bad.output
    assert runner.invoke(app, [*args, "--base", "HEAD"]).exit_code == 1
    (repo / "contracts" / "track" / "report_created" / "1-0-1.json").rename(
        repo / "contracts" / "track" / "report_created" / "2-0-0.json"
    )
    (repo / "contracts" / "track" / "report_created" / "2-0-0.json").write_text(
        (repo / "contracts" / "track" / "report_created" / "2-0-0.json").read_text().replace("1-0-1", "2-0-0")
    )
    assert runner.invoke(app, args).exit_code == 0


def test_a_bad_contracts_folder_exits_2_naming_the_file(repo: Path) -> None:
    bad = repo / "contracts" / "track" / "report_created" / "1-0-2.json"
    bad.write_text("{")
    for command in (["list"], ["check"]):
        result = runner.invoke(app, ["contracts", *command, "--dir", str(repo / "contracts")])
        assert result.exit_code == 2
        assert str(bad) in result.output


def test_infer_prints_a_schema_per_event(tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    messages = [
        {"type": "track", "event": "Report Created", "properties": {"report_id": "r1", "rows": 1}},
        {"type": "track", "event": "Report Created", "properties": {"report_id": "r2"}},
        {"type": "track", "event": "Invite Sent", "properties": {"role": "admin"}},
    ]
    samples.write_bytes(b"\n".join(orjson.dumps(m) for m in messages))
    result = runner.invoke(app, ["contracts", "infer", str(samples), "--event", "Report Created"])
    assert result.exit_code == 0, result.output
    assert "// track/report_created/1-0-0.json" in result.output
    assert "invite_sent" not in result.output
    schema = orjson.loads(result.output.split("\n", 1)[1])
    assert schema["required"] == ["report_id"]
    missing = runner.invoke(app, ["contracts", "infer", str(samples), "--event", "Nope"])
    assert missing.exit_code == 1
