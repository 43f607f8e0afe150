"""``insightloop status``: cheap facts from metadata, on empty and on populated data dirs."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from insightloop.cli.main import app
from insightloop.config import Config

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
    assert {s["name"]: s["up"] for s in data["services"]} == {"collector": False, "processor": False}  # type: ignore[attr-defined]
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
    pid_file = config.path("run", "processor.pid")
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{os.getpid()}\n")
    services = {s["name"]: s["up"] for s in status_json()["services"]}  # type: ignore[attr-defined]
    assert services == {"collector": True, "processor": True}


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
