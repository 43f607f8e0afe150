"""``insightloop query``: answers from the warehouse, in three formats; errors exit cleanly."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from insightloop.cli.main import app
from insightloop.config import Config

runner = CliRunner()
SQL = "SELECT id, event, received_at FROM cleaned.tracks ORDER BY id"


def test_csv(lake: Config) -> None:
    result = runner.invoke(app, ["query", SQL, "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "id,event,received_at\n"
        "m1,Report Created,2026-11-01T12:00:01+00:00\n"
        'm2,"Invite Sent, with a comma",2026-11-01T12:00:02+00:00\n'
    )


def test_json(lake: Config) -> None:
    result = runner.invoke(app, ["query", SQL, "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"id": "m1", "event": "Report Created", "received_at": "2026-11-01T12:00:01+00:00"},
        {"id": "m2", "event": "Invite Sent, with a comma", "received_at": "2026-11-01T12:00:02+00:00"},
    ]


def test_table_with_a_row_limit(lake: Config) -> None:
    result = runner.invoke(app, ["query", SQL, "--max-rows", "1"])
    assert result.exit_code == 0, result.output
    assert "Report Created" in result.stdout
    assert "Invite Sent" not in result.stdout
    assert "2 rows (1 not shown" in result.stdout


def test_joins_raw_and_cleaned(lake: Config) -> None:
    sql = (
        "SELECT count(*) AS n FROM raw.sdk_events r "
        "JOIN cleaned.tracks t ON t.id = r.event_id WHERE r.rejection IS NULL"
    )
    result = runner.invoke(app, ["query", sql, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 2}]


def test_bad_sql_exits_1_with_the_error(lake: Config) -> None:
    result = runner.invoke(app, ["query", "SELEC id FROM cleaned.tracks"])
    assert result.exit_code == 1
    assert "syntax error" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_table_exits_1(lake: Config) -> None:
    result = runner.invoke(app, ["query", "SELECT * FROM cleaned.nope"])
    assert result.exit_code == 1
    assert "nope" in result.stderr
    assert "SHOW ALL TABLES" in result.stderr


def test_show_all_tables_lists_the_lake(lake: Config) -> None:
    sql = "SELECT schema || '.' || name AS t FROM (SHOW ALL TABLES) ORDER BY t"
    result = runner.invoke(app, ["query", sql, "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["t", "cleaned.tracks", "raw.sdk_events"]


def test_empty_data_dir_answers_from_empty_schemas(config: Config) -> None:
    result = runner.invoke(app, ["query", "SELECT count(*) AS n FROM information_schema.tables", "-f", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "n"


def test_bad_config_exits_2_naming_the_key(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[processor]\nmax_batch_events = "many"\n')
    result = runner.invoke(app, ["--config", str(bad), "query", "SELECT 1"])
    assert result.exit_code == 2
    assert "processor.max_batch_events" in result.stderr
    assert "Traceback" not in result.output


def test_bad_config_from_the_environment_exits_2(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["status"], env={"INSIGHTLOOP__LOG__SHARDS": "0"})
    assert result.exit_code == 2
    assert "log.shards" in result.stderr


def test_missing_config_file_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["query", "SELECT 1"], env={"INSIGHTLOOP_CONFIG": str(tmp_path / "nope.toml")}
    )
    assert result.exit_code == 2
    assert "nope.toml" in result.stderr
