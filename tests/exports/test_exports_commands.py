"""``insightloop load`` exit codes and output, and the file loader process: it finds new files
in the landing zone, loads each once, leaves rejected ones alone until they change, stops on
request, and only one runs per lake."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from exports_kit import ENTITY, SOURCE, Lake, counts, csv_text, landing_file, make_config, row
from typer.testing import CliRunner

from insightloop.cli.main import app
from insightloop.config import Config
from insightloop.errors import TerminalError
from insightloop.exports.loader import lock_path
from insightloop.exports.service import run
from insightloop.exports.status import files_status
from insightloop.processor.runner import exclusive


def invoke(config: Config, *args: str) -> tuple[int, str]:
    env = {"INSIGHTLOOP_DATA_DIR": config.data_dir, "INSIGHTLOOP__CONTRACTS__DIR": config.contracts.dir}
    env |= {"INSIGHTLOOP__EXPORTS__MAX_BAD_FRACTION": str(config.exports.max_bad_fraction)}
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_load_exit_codes(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    good = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(1), row(2)]))
    code, output = invoke(config, "load", str(good))
    assert code == 0 and "loaded" in output and "2 rows, 0 bad" in output
    code, output = invoke(config, "load", str(good))
    assert code == 0 and "unchanged" in output
    bad = landing_file(tmp_path, "contacts_2026-11-26.csv", csv_text([row(3)], ["id", "email"]))
    code, output = invoke(config, "load", str(bad))
    assert code == 1 and "rejected" in output and "updated_at" in output
    code, output = invoke(config, "load", str(tmp_path / "missing.csv"))
    assert code == 2 and "does not exist" in output
    assert Lake(config).counts() == counts(2, 0, 2, 0)


def test_load_a_folder_with_source_and_entity_from_the_path(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    landing_file(tmp_path, "contacts_2026-11-24.csv", csv_text([row(1)]))
    landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(2)]))
    code, output = invoke(config, "load", str(tmp_path / "in"))
    assert code == 0 and sum(line.startswith("loaded ") for line in output.splitlines()) == 2
    assert {(s.source, s.entity, s.status) for s in files_status(config)} == {(SOURCE, ENTITY, "loaded")}


def test_load_is_refused_while_the_loader_holds_the_lake(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    good = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(1)]))
    with exclusive(lock_path(config), "held"):
        code, output = invoke(config, "load", str(good))
    assert code == 1 and "file loader" in output


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_loader_polls_the_landing_zone(tmp_path: Path) -> None:
    config = make_config(tmp_path, landing=str(tmp_path / "landing"), poll_seconds=0.1)
    folder = tmp_path / "landing" / SOURCE / ENTITY
    folder.mkdir(parents=True)
    (folder / "contacts_2026-11-24.csv").write_text(csv_text([row(1), row(2)]))
    (folder / "contacts_2026-11-25.csv.part").write_text(csv_text([row(9)]))  # an upload in progress
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(config, stop))
    thread.start()
    try:
        wait_for(lambda: [s.status for s in files_status(config)] == ["loaded"])
        (folder / "contacts_2026-11-25.csv").write_text(csv_text([row(3)], ["id"]))  # rejected
        wait_for(lambda: len(files_status(config)) == 2)
        wait_for(lambda: sorted(s.status for s in files_status(config)) == ["loaded", "rejected"])
        with pytest.raises(TerminalError, match="only one may run per lake"):
            run(config, threading.Event())
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert Lake(config).counts() == counts(2, 0, 2, 0)
