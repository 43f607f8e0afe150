"""kill -9 of a real ``insightloop cdc-processor`` at random moments while change batches
keep arriving: after a last restart the current-state tables equal the source and the
history holds every change exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cdc_lake_kit import Source, expected_rows, history, live_rows, record
from test_cdc_current_state import saas_source, workload

import insightloop
from insightloop.config import load_config
from insightloop.lake.catalog import open_catalog
from insightloop.log.factory import open_cdc_log
from insightloop.processor.cdc.naming import history_identifier, state_identifier

pytestmark = pytest.mark.slow


def environment(data_dir: Path) -> dict[str, str]:
    src = str(Path(insightloop.__file__).parent.parent)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
        "INSIGHTLOOP_DATA_DIR": str(data_dir),
        "INSIGHTLOOP__LOG__FSYNC": "false",
        "INSIGHTLOOP__PROCESSOR__MAX_BATCH_EVENTS": "200",
        "INSIGHTLOOP__PROCESSOR__MAX_BATCH_SECONDS": "0.2",
        "INSIGHTLOOP__PROCESSOR__COMPACT_MIN_FILES": "4",
        "INSIGHTLOOP__CDC__PROCESSOR_METRICS_PORT": "0",
    }


def start(env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with out.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "insightloop", "cdc-processor"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def matches(catalog_dir: Path, source: Source, env: dict[str, str], changes: int) -> bool:
    catalog = open_catalog(load_config(environ=env))
    for table in source.tables.values():
        names = [c.name for c in table.columns]
        if live_rows(catalog, state_identifier(table.name), names) != expected_rows(table):
            return False
    return sum(len(history(catalog, history_identifier(t))) for t in source.tables) >= changes


def test_tables_equal_the_source_after_kill_9_and_restart(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    env = environment(tmp_path / "data")
    config = load_config(environ=env)
    out = tmp_path / "cdc-processor.out"
    log = open_cdc_log(config)
    source = saas_source()
    changes = 0

    def append_some(steps: int) -> None:
        nonlocal changes
        workload(source, rng, steps)
        pending = source.take()
        changes += len(pending)
        while pending:
            size = rng.randint(1, 15)
            log.append(log.shards()[0], [record(pending[:size])])
            pending = pending[size:]

    child = start(env, out)
    try:
        for _ in range(3):
            deadline = time.monotonic() + rng.uniform(1.0, 3.0)
            while time.monotonic() < deadline:
                append_some(rng.randint(5, 40))
                time.sleep(rng.uniform(0.0, 0.05))
            child.send_signal(signal.SIGKILL)
            child.wait()
            child = start(env, out)
        append_some(100)
        deadline = time.monotonic() + 90
        while not matches(tmp_path, source, env, changes):
            assert child.poll() is None, out.read_text()[-3000:]
            assert time.monotonic() < deadline, "the restarted CDC processor did not catch up"
            time.sleep(0.5)
        child.send_signal(signal.SIGTERM)
        assert child.wait(60) == 0, out.read_text()[-3000:]
    finally:
        log.close()
        if child.poll() is None:
            child.kill()
    catalog = open_catalog(config)
    for table in source.tables:
        ids = [r["event_id"] for r in history(catalog, history_identifier(table))]
        assert len(ids) == len(set(ids)), f"duplicate history rows in {table}"
    assert sum(len(history(catalog, history_identifier(t))) for t in source.tables) == changes
