"""``insightloop status``: cheap facts from metadata, on empty and on populated data dirs."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pytest
from cli_kit import raw_row
from typer.testing import CliRunner

from insightloop.cli.main import app
from insightloop.config import Config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA, ensure_raw_table
from insightloop.lake.watermarks import RAW_SEQ
from insightloop.processor.catchup import read_raw

runner = CliRunner()


def status_json() -> dict[str, object]:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_empty_data_dir(config: Config) -> None:
    data = status_json()
    assert data["tables"] == []
    assert data["log"] == []
    services = {s["name"]: s["up"] for s in data["services"]}  # type: ignore[attr-defined]
    assert services == {
        "collector": False,
        "processor": False,
        "cleaner": False,
        "cdc-reader": False,
        "cdc-processor": False,
        "file-loader": False,
    }
    assert data["exports"] == []
    cdc = data["cdc"]
    assert isinstance(cdc, dict) and cdc["state"] is None
    assert cdc["error"] == "the demo application database is not running"
    assert data["stage2"] == {"mode": "separate", "raw_seq": None, "watermark": 0, "lag": None}
    assert not config.path().exists(), "status must not create the data dir"


def test_empty_data_dir_for_people(config: Config) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "none yet" in result.stdout


def test_tables_from_snapshot_summaries(lake: Config) -> None:
    tables = {t["table"]: t for t in status_json()["tables"]}  # type: ignore[attr-defined]
    assert set(tables) == {"raw.sdk_events", "cleaned.tracks"}
    raw = tables["raw.sdk_events"]
    assert raw["rows"] == 3
    assert raw["snapshots"] == 2
    assert raw["rows_last_minute"] == 3  # both commits were made just now
    assert raw["newest_column"] == "received_at"
    assert raw["newest"] == "2026-11-01T12:00:03+00:00"
    assert tables["cleaned.tracks"]["rows"] == 2


def test_table_view_lists_tables(lake: Config) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "raw.sdk_events" in result.stdout
    assert "cleaned.tracks" in result.stdout


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector(config: Config) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", config.collector.port), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield
    server.shutdown()
    server.server_close()


def test_services_up(config: Config, collector: None) -> None:
    config.path("run").mkdir(parents=True)
    for name in ("processor", "cleaner", "cdc-processor"):
        config.path("run", f"{name}.pid").write_text(f"{os.getpid()}\n")
    services = {s["name"]: s["up"] for s in status_json()["services"]}  # type: ignore[attr-defined]
    assert services == {
        "collector": True,
        "processor": True,
        "cleaner": True,
        "cdc-reader": False,
        "cdc-processor": True,
        "file-loader": False,
    }


def test_without_cdc_status_shows_none_of_it(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSIGHTLOOP__CDC__ENABLED", "false")
    monkeypatch.setenv("INSIGHTLOOP__EXPORTS__ENABLED", "false")
    data = status_json()
    assert data["cdc"] is None
    assert {s["name"] for s in data["services"]} == {"collector", "processor", "cleaner"}  # type: ignore[attr-defined]


def test_inline_stage2_has_no_cleaner(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSIGHTLOOP__PROCESSOR__STAGE2", "inline")
    cleaner = next(s for s in status_json()["services"] if s["name"] == "cleaner")  # type: ignore[attr-defined]
    assert cleaner["up"] is False
    assert "inline" in cleaner["detail"]


def test_stage2_lag_is_raw_commits_not_yet_cleaned(config: Config) -> None:
    from insightloop.processor.cleaned.stage import CleanedStage

    catalog = open_catalog(config)
    raw = ensure_raw_table(catalog)
    for seq in (1, 2, 3):
        raw.append(
            pa.Table.from_pylist([raw_row(f"m{seq}", seq, seq)], schema=RAW_ARROW_SCHEMA),
            snapshot_properties={RAW_SEQ: str(seq)},
        )
    stage = CleanedStage(catalog, config)
    stage.apply(read_raw(raw, 0, 1))  # stage 2 has applied raw seq 1 of 3
    assert status_json()["stage2"] == {"mode": "separate", "raw_seq": 3, "watermark": 1, "lag": 2}
    result = runner.invoke(app, ["status"])
    assert "applied raw seq 1 of 3 (lag 2 raw commits)" in result.stdout


def test_stale_pid_file_means_down(config: Config) -> None:
    pid_file = config.path("run", "processor.pid")
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text("999999999\n")
    services = {s["name"]: s["up"] for s in status_json()["services"]}  # type: ignore[attr-defined]
    assert services["processor"] is False


def test_log_lag_per_shard_from_the_processor_checkpoint(lake: Config) -> None:
    from insightloop.log import factory

    log = factory.open_log(lake)
    try:
        shard = log.shards()[0]
        log.append(shard, [b"a", b"b", b"c", b"d"])
        log.save_checkpoint("processor", shard, 2)
    finally:
        log.close()
    shards = {s["shard"]: s for s in status_json()["log"]}  # type: ignore[attr-defined]
    assert shards[shard]["checkpoint"] == 2
    assert shards[shard]["lag_records"] == 1


def test_quarantine_section_when_nothing_is_quarantined(lake: Config) -> None:
    assert status_json()["quarantine"] == {
        "last_hour": 0,
        "last_day": 0,
        "total": 0,
        "per_minute": 0.0,
        "counts": [],
    }
    assert "Quarantine: empty" in runner.invoke(app, ["status"]).stdout


def test_export_files_show_what_became_of_them(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from insightloop.exports.generate import daily_exports

    monkeypatch.setenv("INSIGHTLOOP__CONTRACTS__DIR", str(Path(__file__).resolve().parents[2] / "contracts"))
    [day] = daily_exports(config.path("landing"), days=1, contacts=300, gzip_last=False)
    loaded = runner.invoke(app, ["load", str(day.path)])
    assert loaded.exit_code == 0, loaded.output
    [shown] = status_json()["exports"]  # type: ignore[misc]
    assert (shown["status"], shown["entity"], shown["rows"], shown["bad_rows"]) == (
        "loaded",
        "contacts",
        day.rows - day.bad,  # the good rows loaded; the bad ones went to quarantine
        day.bad,
    )
    table = runner.invoke(app, ["status"], env={"COLUMNS": "200"})
    assert "Export files" in table.stdout and "loaded" in table.stdout
    name = day.path.name
    assert re.search(rf"{re.escape(name)}\W+{day.period}\W+loaded", table.stdout)  # its period column
