"""The stream processor without HTTP: a pre-filled in-memory log drained into the lake.

- ``stage1_build``: log records → raw rows (msgspec decode of each batch and each event,
  column lists, Arrow arrays), no I/O;
- ``stage1``: the same plus the raw commit (Parquet + Iceberg on local disk), per batch;
- ``stage1_plus_stage2``: the whole processor with the cleaned tables (when they exist).

Events are ~1.5 KB realistic track events (``benchmarks.events``), 100 per log record (one
``/v1/batch`` request), micro-batches of ``max_batch_events`` (50K by default).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from benchmarks.events import track_events
from insightloop.collected import FORMAT_VERSION, CollectedBatch, CollectedEvent, encode_batch
from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.log.memory import MemoryLog
from insightloop.processor.intake import BatchLimits, read_batch
from insightloop.processor.progress import RawProgress
from insightloop.processor.runner import Processor, cleaned_stage

EVENTS = 200_000
PER_RECORD = 100
SHARDS = 2
CONTEXT = b'{"library":{"name":"analytics-python","version":"2.3.3"},"ip":"198.51.100.7"}'


def _log(events: list[bytes]) -> MemoryLog:
    log = MemoryLog(shards=SHARDS)
    received = int(time.time() * 1_000_000)
    shards = log.shards()
    for n, start in enumerate(range(0, len(events), PER_RECORD)):
        chunk = events[start : start + PER_RECORD]
        batch = CollectedBatch(
            FORMAT_VERSION,
            "web",
            received,
            "2026-11-26T10:00:00.000Z",
            CONTEXT,
            [CollectedEvent(f"b-{start + i:012d}", "track", raw) for i, raw in enumerate(chunk)],
        )
        log.append(shards[n % SHARDS], [encode_batch(batch)])
    return log


def _config(root: Path) -> Config:
    # The bench's synthetic events have no contracts (bench_cleaned measures validation).
    return load_config(environ={"INSIGHTLOOP_DATA_DIR": str(root), "INSIGHTLOOP__CONTRACTS__MODE": "off"})


def bench_build(events: list[bytes], limits: BatchLimits) -> float:
    log = _log(events)
    progress = RawProgress({}, 0)
    stop = threading.Event()
    start = time.perf_counter()
    done = 0
    while True:
        rows = read_batch(log, progress, limits, stop)
        if not rows.records:
            break
        rows.to_arrow(progress.seq + 1)
        progress = progress.advanced(rows.positions)
        done += len(rows)
    return done / (time.perf_counter() - start)


def bench_processor(events: list[bytes], limits: BatchLimits, with_stage: bool) -> dict[str, float] | None:
    with tempfile.TemporaryDirectory(prefix="bench-processor-") as root:
        config = _config(Path(root))
        catalog = open_catalog(config)
        stage = cleaned_stage(catalog, config) if with_stage else None
        if with_stage and stage is None:
            return None
        processor = Processor(_log(events), catalog, stage, limits)
        processor.start()
        start = time.perf_counter()
        batches = 0
        while processor.step():
            batches += 1
        elapsed = time.perf_counter() - start
        sample = processor.metrics.registry.get_sample_value
        commit = sample("insightloop_processor_raw_commit_seconds_sum") or 0.0
        stage_s = sample("insightloop_processor_stage2_seconds_sum") or 0.0
        return {
            "events_per_s": len(events) / elapsed,
            "seconds_per_batch": elapsed / batches,
            "raw_commit_seconds_per_batch": commit / batches,
            "stage2_seconds_per_batch": stage_s / batches,
        }


def run() -> dict[str, float]:
    events = track_events(EVENTS, seed=3)
    limits = BatchLimits(50_000, 1.0)
    figures = {"stage1_build_events_per_s": bench_build(events, limits)}
    stage1 = bench_processor(events, limits, with_stage=False)
    assert stage1 is not None
    figures["stage1_events_per_s"] = stage1["events_per_s"]
    figures["stage1_raw_commit_seconds_per_50k_batch"] = stage1["raw_commit_seconds_per_batch"]
    both = bench_processor(events, limits, with_stage=True)
    if both is not None:
        figures["stage1_plus_stage2_events_per_s"] = both["events_per_s"]
        figures["stage2_seconds_per_50k_batch"] = both["stage2_seconds_per_batch"]
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:45s} {value:14,.2f}")
