"""``insightloop up`` end to end (slow): serves Segment batches into the lake, captures the demo
application database's changes into cleaned.app_*, stops on SIGTERM."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psycopg
import pytest

from insightloop.cdc.appdb.server import appdb_dir, running_port
from insightloop.cli.demo import healthy
from insightloop.cli.up import collector_url
from insightloop.config import Config
from insightloop.demo.sender import Sender
from insightloop.warehouse import open_warehouse

pytestmark = pytest.mark.slow


def wait_until(check: object, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def landed(config: Config, event_id: str) -> bool:
    with open_warehouse(config, ["raw.sdk_events"]) as warehouse:
        if "raw.sdk_events" not in warehouse.pins:
            return False
        row = warehouse.con.execute(
            "SELECT count(*) FROM raw.sdk_events WHERE event_id = ?", [event_id]
        ).fetchone()
        return row == (1,)


def cleaned(config: Config, event_id: str) -> bool:
    with open_warehouse(config, ["cleaned.tracks"]) as warehouse:
        if "cleaned.tracks" not in warehouse.pins:
            return False
        row = warehouse.con.execute("SELECT count(*) FROM cleaned.tracks WHERE id = ?", [event_id]).fetchone()
        return row == (1,)


def captured(config: Config, name: str) -> bool:
    """Whether an account named ``name`` is a live row of cleaned.app_accounts."""
    with open_warehouse(config, ["cleaned.app_accounts"]) as warehouse:
        if "cleaned.app_accounts" not in warehouse.pins:
            return False
        row = warehouse.con.execute(
            "SELECT count(*) FROM cleaned.app_accounts WHERE name = ? AND NOT _deleted", [name]
        ).fetchone()
        return row == (1,)


def insert_account(name: str) -> None:
    """An account inserted into the demo database that ``up`` runs (``cdc db start`` reuses it)."""
    started = subprocess.run(
        [sys.executable, "-m", "insightloop", "cdc", "db", "start"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    with psycopg.connect(started.stdout.strip(), autocommit=True) as conn:
        conn.execute("INSERT INTO accounts (name, plan_id) VALUES (%s, 2)", (name,))


def file_loaded(config: Config, name: str) -> bool:
    from insightloop.exports.status import files_status

    return any(f.uri.endswith(name) and f.status == "loaded" for f in files_status(config))


def test_up_collects_processes_and_stops_cleanly(
    env: dict[str, str], config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from insightloop.exports.generate import daily_exports

    monkeypatch.setenv("INSIGHTLOOP__EXPORTS__POLL_SECONDS", "0.5")
    output = tmp_path / "up.out"
    with output.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "insightloop", "up"], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = collector_url(config)
        wait_until(lambda: healthy(url), "the collector")
        event = {"type": "track", "event": "Up Tested", "userId": "u1", "messageId": "up-test-1"}
        sender = Sender(url)
        outcome = sender.send("demo-web-write-key", gzip.compress(orjson.dumps({"batch": [event]})))
        sender.close()
        assert outcome.status == 200
        wait_until(lambda: landed(config, "up-test-1"), "the event in raw.sdk_events")
        wait_until(lambda: cleaned(config, "up-test-1"), "the event in cleaned.tracks (the cleaner's work)")
        wait_until(lambda: running_port(appdb_dir(config)) is not None, "the demo application database")
        insert_account("Up Test Inc")
        wait_until(
            lambda: captured(config, "Up Test Inc"),
            "the inserted account in cleaned.app_accounts (the CDC reader's and processor's work)",
        )
        [day] = daily_exports(config.path("landing"), days=1, contacts=200, gzip_last=False)
        wait_until(lambda: file_loaded(config, day.path.name), "the export file loaded by the file loader")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.read_text()
    assert process.returncode == 0, text
    assert "collector stopped (exit code 0)" in text
    assert "processor stopped (exit code 0)" in text
    assert "cleaner stopped (exit code 0)" in text
    assert "cdc-reader stopped (exit code 0)" in text
    assert "cdc-processor stopped (exit code 0)" in text
    assert "file-loader stopped (exit code 0)" in text
    for name in ("collector", "processor", "cleaner", "cdc-reader", "cdc-processor", "file-loader"):
        assert not config.path("run", f"{name}.pid").exists()
    assert running_port(appdb_dir(config)) is None, "up started the demo database, so it stops it"


def test_up_refuses_a_port_in_use(env: dict[str, str], config: Config) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", config.collector.port))
        busy.listen()
        result = subprocess.run(
            [sys.executable, "-m", "insightloop", "up"], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert "already in use" in result.stderr
