"""A crash anywhere is a restart: kill -9 of ``insightloop load`` mid-load leaves no rows
and the file loads on the next run; a crash between raw's commit and the manifest, or between
quarantine's commit and cleaned's, is finished by the next run, with every row once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from exports_kit import ENTITY, Lake, counts, csv_text, environment, landing_file, make_config, on_disk, row

from insightloop.exports.manifest import Manifest
from insightloop.exports.status import files_status

BIG_ROWS = 400_000


class Crash(Exception):
    pass


def test_a_crash_between_quarantine_and_cleaned_is_finished_on_restart(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_bad_fraction=1.0)
    lake = Lake(config)

    def crash(table: str) -> None:
        if table == "quarantine.export_rows":
            raise Crash(table)

    lake.loader.stage.after_table = crash
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(1), row(2), row(3, score="bad")]))
    with pytest.raises(Crash):
        lake.load(path)
    assert lake.counts() == counts(2, 1, 0, 1)

    restarted = Lake(config)
    assert restarted.load(path).status == "unchanged"
    assert restarted.counts() == counts(2, 1, 2, 1)


def test_a_crash_after_the_raw_commit_before_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)

    def crash(self: Manifest, record: object) -> None:
        raise Crash("manifest")

    with monkeypatch.context() as patch:
        patch.setattr(Manifest, "add", crash)
        with pytest.raises(Crash):
            lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(1), row(2)])))
    assert lake.counts() == counts(2, 0, 0, 0)

    restarted = Lake(config)
    assert (
        restarted.load(tmp_path / "in" / "hubspot" / ENTITY / "contacts_2026-11-25.csv").status == "unchanged"
    )
    assert restarted.counts() == counts(2, 0, 2, 0)


def loading(tmp_path: Path) -> bool:
    status = tmp_path / "data" / "exports" / "status.json"
    try:
        return any(s["status"] == "loading" for s in json.loads(status.read_text()).values())
    except (OSError, ValueError):
        return False


@pytest.mark.slow
def test_kill_9_mid_load_then_restart(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(row(i) for i in range(BIG_ROWS)))
    env = environment(tmp_path)
    command = [sys.executable, "-m", "insightloop", "load", str(path)]
    with (tmp_path / "load.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    raw_data = tmp_path / "data" / "lake" / "warehouse" / "raw" / "export_rows"
    deadline = time.monotonic() + 60
    # Kill it once it has written raw data files, well before its commit.
    while not on_disk(raw_data) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "the load finished before it could be killed: make the file bigger"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    lake = Lake(config)
    assert lake.counts() == counts(0, 0, 0, 0)
    assert [s.status for s in files_status(config)] == ["loading"]
    assert on_disk(raw_data), "the killed load left no data file: nothing to clean up"

    done = subprocess.run(command, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert lake.counts() == counts(BIG_ROWS, 0, BIG_ROWS, 0)
    assert [s.status for s in files_status(config)] == ["loaded"]
    # What the killed load wrote is gone: every data file on disk is the table's.
    for name in ("raw.export_rows", f"cleaned.crm_{ENTITY}"):
        table = lake.catalog.load_table(name)
        referenced = {task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()}
        assert on_disk(Path(table.location().removeprefix("file://"))) == referenced, name
    assert not any((tmp_path / "data" / "exports" / "staging").iterdir())
