"""kill -9 of a real processor process at random moments, while records keep arriving:
after a last restart every appended log record is in raw exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processor_support import record, track
from pyiceberg.exceptions import NoSuchTableError

import insightloop
from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.log.factory import open_log

pytestmark = pytest.mark.slow

CHILD = (
    "from insightloop.config import load_config\n"
    "from insightloop.processor.runner import run\n"
    "run(load_config())\n"
)


def environment(data_dir: Path) -> dict[str, str]:
    src = str(Path(insightloop.__file__).parent.parent)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
        "INSIGHTLOOP_DATA_DIR": str(data_dir),
        "INSIGHTLOOP__LOG__SHARDS": "2",
        "INSIGHTLOOP__LOG__FSYNC": "false",
        "INSIGHTLOOP__PROCESSOR__MAX_BATCH_EVENTS": "300",
        "INSIGHTLOOP__PROCESSOR__MAX_BATCH_SECONDS": "0.2",
        "INSIGHTLOOP__PROCESSOR__COMPACT_MIN_FILES": "4",
    }


def start(env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with out.open("ab") as sink:
        return subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=sink, stderr=subprocess.STDOUT)


def raw_origins(config: Config) -> list[str]:
    try:
        table = open_catalog(config).load_table(SDK_EVENTS)
    except NoSuchTableError:
        return []
    return list(table.scan(selected_fields=("origin",)).to_arrow()["origin"].to_pylist())


def test_every_appended_record_lands_in_raw_once_despite_kill_9(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    env = environment(tmp_path / "data")
    config = load_config(environ=env)
    out = tmp_path / "processor.out"
    log = open_log(config)
    expected: set[str] = set()
    appended = 0

    def append_some(records: int) -> None:
        nonlocal appended
        for _ in range(records):
            shard = rng.choice(log.shards())
            events = [track(f"k-{appended}-{i}") for i in range(rng.randint(1, 8))]
            (position,) = log.append(shard, [record(events)])
            expected.update(f"log:{shard}:{position.offset}:{i}" for i in range(len(events)))
            appended += 1

    try:
        for _ in range(4):
            child = start(env, out)
            deadline = time.monotonic() + rng.uniform(0.5, 4.0)
            while time.monotonic() < deadline:
                append_some(rng.randint(1, 20))
                time.sleep(rng.uniform(0.0, 0.05))
            child.send_signal(signal.SIGKILL)
            child.wait()
        append_some(50)
        child = start(env, out)
        deadline = time.monotonic() + 120
        while len(raw_origins(config)) < len(expected):
            assert child.poll() is None, out.read_text()[-3000:]
            assert time.monotonic() < deadline, "the restarted processor did not catch up"
            time.sleep(0.2)
        child.send_signal(signal.SIGTERM)
        assert child.wait(60) == 0, out.read_text()[-3000:]
    finally:
        log.close()
        if child.poll() is None:
            child.kill()
    origins = raw_origins(config)
    assert len(origins) == len(set(origins)), "a log record was written to raw twice"
    assert set(origins) == expected
