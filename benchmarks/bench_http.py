"""HTTP → cleaned, end to end: the real collector and processor as child processes, a load
generator in a third process, all on this machine.

A burst (as fast as the collector accepts; the log absorbs what the processor cannot yet
take), then a ladder of fixed offered rates from the company's 25K events/s average up to
its 120K/s peak: the sustained rate is the highest the pipeline accepts in full while p95
latency from acceptance to visibility in cleaned.tracks stays under 10 s.
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


#: Offered rates tried in turn; the pipeline "sustains" a rate when it accepts it all and
#: p95 latency to cleaned stays under 10 s. The first is the company's average load.
LADDER = (25_000, 35_000, 50_000, 70_000, 100_000, 120_000)
LATENCY_GOAL_P95_S = 10.0


def _step(
    services: Services, config: Config, seconds: float, rate: float, first_batch: int
) -> dict[str, float]:
    base = _tracks_count(config)
    since_ms = int(time.time() * 1000)
    load = _run_load(services.port, seconds, rate, first_batch=first_batch)
    _wait_drained(config, base + load.accepted_events, 600)
    lat = _latencies(config, since_ms)
    return {
        "offered": rate,
        "accepted": load.accepted_events / load.seconds,
        "throttled": load.throttled,
        "p50": _percentile(lat, 0.50),
        "p95": _percentile(lat, 0.95),
        "p99": _percentile(lat, 0.99),
    }


def run(seconds: float = 20.0) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="insightloop-bench-") as tmp:
        # The bench's synthetic events have no contracts (bench_cleaned measures validation).
        services = Services(Path(tmp) / "data", extra_env={"INSIGHTLOOP__CONTRACTS__MODE": "off"})
        config = load_config(environ={"INSIGHTLOOP_DATA_DIR": str(services.data_dir)})
        services.start_pipeline()
        try:
            # Warm-up creates the tables so the measured runs start steady.
            warm = _run_load(services.port, 3, 3000, first_batch=0)
            _wait_drained(config, warm.accepted_events, 120)

            # Burst: as fast as the collector accepts; the log absorbs what the processor can't.
            base = _tracks_count(config)
            start = time.monotonic()
            burst = _run_load(services.port, seconds, None, first_batch=10**6)
            done = _wait_drained(config, base + burst.accepted_events, 600)
            figures["burst_accepted_events_per_s"] = burst.accepted_events / burst.seconds
            figures["burst_through_to_cleaned_events_per_s"] = burst.accepted_events / (done - start)
            figures["burst_throttled_requests"] = burst.throttled

            sustained = 0.0
            for i, rate in enumerate(LADDER):
                step = _step(services, config, seconds, rate, first_batch=(2 + i) * 10**6)
                print(
                    f"  offered {rate:>7,}/s: accepted {step['accepted']:>9,.0f}/s, "
                    f"latency p50 {step['p50']:.2f} s, p95 {step['p95']:.2f} s, p99 {step['p99']:.2f} s",
                    flush=True,
                )
                if i == 0:
                    figures["at_25k_latency_p50_s"] = step["p50"]
                    figures["at_25k_latency_p95_s"] = step["p95"]
                    figures["at_25k_latency_p99_s"] = step["p99"]
                    figures["at_25k_accepted_events_per_s"] = step["accepted"]
                kept_up = step["accepted"] >= 0.98 * rate and step["p95"] < LATENCY_GOAL_P95_S
                if not kept_up:
                    break
                sustained = rate
            figures["sustained_events_per_s"] = sustained
        finally:
            services.stop_all()
    return figures
