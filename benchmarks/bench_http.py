"""HTTP → cleaned, end to end: the real collector and processor as child processes, a load
generator in a third process, all on this machine.

Two runs: as fast as the pipeline accepts (sustained events/s through to cleaned.tracks),
and a fixed 25K events/s (latency from acceptance to visibility in cleaned.tracks).
Latency is exact per event: the commit time of the snapshot that added its row minus its
``received_at`` (the collector's acceptance time).
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.manifest import ManifestEntryStatus

from benchmarks.loadgen import LoadResult, generate
from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.testing import Services

WRITE_KEY = "demo-web-write-key"


def _load(port: int, seconds: float, rate: float | None, first_batch: int, out: Any) -> None:
    out.put(generate(port, WRITE_KEY, seconds, rate, first_batch=first_batch))


def _run_load(port: int, seconds: float, rate: float | None, first_batch: int) -> LoadResult:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_load, args=(port, seconds, rate, first_batch, queue))
    proc.start()
    result: LoadResult = queue.get(timeout=seconds + 120)
    proc.join()
    return result


def _tracks_count(config: Config) -> int:
    try:
        table = open_catalog(config).load_table("cleaned.tracks")
    except NoSuchTableError:
        return 0
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-records", 0))


def _wait_drained(config: Config, expected: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _tracks_count(config) >= expected:
            return time.monotonic()
        time.sleep(0.2)
    raise TimeoutError(f"cleaned.tracks has {_tracks_count(config)} of {expected} rows after {timeout}s")


def _latencies(config: Config, since_ms: int) -> list[float]:
    """Per event: commit time of the snapshot that appended it − received_at, in seconds."""
    table = open_catalog(config).load_table("cleaned.tracks")
    io = table.io
    out: list[float] = []
    for snapshot in table.snapshots():
        if snapshot.timestamp_ms < since_ms or snapshot.summary is None:
            continue
        if snapshot.summary.operation.value != "append":
            continue  # compaction rewrites are not first visibility
        for manifest in snapshot.manifests(io):
            if manifest.added_snapshot_id != snapshot.snapshot_id:
                continue
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                if entry.status != ManifestEntryStatus.ADDED:
                    continue
                path = entry.data_file.file_path.removeprefix("file://")
                received = pq.read_table(path, columns=["received_at"]).column(0)
                commit_s = snapshot.timestamp_ms / 1000
                out.extend(commit_s - r.timestamp() for r in received.to_pylist())
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def run(seconds: float = 30.0, latency_rate: float = 25_000.0) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="insightloop-bench-") as tmp:
        services = Services(Path(tmp) / "data")
        config = load_config(environ={"INSIGHTLOOP_DATA_DIR": str(services.data_dir)})
        services.start_pipeline()
        try:
            # Warm-up creates the tables so the measured runs start steady.
            warm = _run_load(services.port, 3, 3000, first_batch=0)
            _wait_drained(config, warm.accepted_events, 120)

            base = _tracks_count(config)
            start = time.monotonic()
            peak = _run_load(services.port, seconds, None, first_batch=10**6)
            accepted_s = peak.accepted_events / peak.seconds
            done = _wait_drained(config, base + peak.accepted_events, 600)
            figures["max_accepted_events_per_s"] = accepted_s
            figures["max_through_to_cleaned_events_per_s"] = peak.accepted_events / (done - start)
            figures["max_throttled_requests"] = peak.throttled

            base = _tracks_count(config)
            since_ms = int(time.time() * 1000)
            steady = _run_load(services.port, seconds, latency_rate, first_batch=2 * 10**6)
            _wait_drained(config, base + steady.accepted_events, 600)
            lat = _latencies(config, since_ms)
            figures["steady_offered_events_per_s"] = latency_rate
            figures["steady_accepted_events_per_s"] = steady.accepted_events / steady.seconds
            figures["steady_throttled_requests"] = steady.throttled
            figures["latency_p50_s"] = _percentile(lat, 0.50)
            figures["latency_p95_s"] = _percentile(lat, 0.95)
            figures["latency_p99_s"] = _percentile(lat, 0.99)
        finally:
            services.stop_all()
    return figures
