"""Append and read throughput of the local log: batches of 100 records of 1.5 KB, the
collector's group-commit shape, with fsync on and off.

Writes under ``.insightloop/bench-log`` of the working directory: the disk the log really
uses by default (a tmpfs ``/tmp`` would make fsync free). Run: ``python -m benchmarks.bench_log``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from insightloop.log.local import LocalLog

BATCH = 100
RECORD_BYTES = 1536
SECONDS = 1.0  # per measurement, at most
MAX_BATCHES = 2000  # and at most 300 MB written
MB = 1_000_000


def _append(root: Path, fsync: bool) -> tuple[dict[str, float], int]:
    log = LocalLog(root, shards=1, segment_bytes=64 << 20, fsync=fsync, retention_hours=0)
    batch = [os.urandom(RECORD_BYTES) for _ in range(BATCH)]
    calls = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < SECONDS and calls < MAX_BATCHES:
        log.append("shard-0", batch)
        calls += 1
    log.close()
    name = "fsync" if fsync else "nofsync"
    return {
        f"log_append_{name}_batches_per_s": calls / elapsed,
        f"log_append_{name}_records_per_s": calls * BATCH / elapsed,
        f"log_append_{name}_mb_per_s": calls * BATCH * RECORD_BYTES / MB / elapsed,
    }, calls * BATCH


def _read(root: Path, count: int) -> dict[str, float]:
    log = LocalLog(root, shards=1, segment_bytes=64 << 20, fsync=False, retention_hours=0)
    started = time.perf_counter()
    last, size, read = None, 0, 0
    while got := log.read("shard-0", last, max_records=1000):
        last = got[-1].position.offset
        read += len(got)
        size += sum(len(r.data) for r in got)
    elapsed = time.perf_counter() - started
    log.close()
    assert read == count, f"read {read} of {count} records"
    return {"log_read_records_per_s": read / elapsed, "log_read_mb_per_s": size / MB / elapsed}


def run() -> dict[str, float]:
    base = Path(".insightloop")
    base.mkdir(exist_ok=True)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-log-", dir=base) as directory:
        synced, _ = _append(Path(directory) / "fsync", fsync=True)
        unsynced, written = _append(Path(directory) / "nofsync", fsync=False)
        figures |= synced | unsynced | _read(Path(directory) / "nofsync", written)
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:36} {value:12,.1f}")
