"""Raw commit time against the number of snapshots a table keeps, and after expiry.

pyiceberg 0.12 deep-copies the whole table metadata several times per commit, so a commit
costs time in proportion to the snapshots kept. This appends one micro-batch at a time to
a fresh ``raw.sdk_events`` (the processor's own raw commit, ``append_raw``) and reports the
median commit time of a few appends once the table holds 50, 400 and 1,000 snapshots, then
expires back to the newest 20 (``lake.maintenance``) and measures again:

- ``raw_commit_ms_at_<n>_snapshots`` and ``raw_commit_ms_after_expiry_to_20``;
- ``metadata_kib_at_<n>_snapshots``: size of the current metadata JSON file;
- ``expiry_ms``: the expiry commit itself; ``metadata_files_at_end``: metadata JSON files on
  disk (pyiceberg deletes those beyond the last 20 when the table properties say so);
  ``manifests_in_current_snapshot``: one per append (expiry does not merge them).

Slow (building 1,000 snapshots takes minutes, that being the point), so not part of
``make bench``. Run alone: ``python -m benchmarks.bench_snapshots``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
from pyiceberg.table import Table

from insightloop.config import load_config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.maintenance import SnapshotRetention, expire_snapshots
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA, ensure_raw_table
from insightloop.processor.commit import append_raw
from insightloop.processor.progress import RawProgress

CHECKPOINTS = (50, 400, 1000)
KEEP = 20
SAMPLES = 5
ROWS = 100


def _batch(seq: int) -> pa.Table:
    received = datetime.now(UTC)
    rows = [
        {
            "event_id": f"m-{seq}-{i}",
            "source": "web",
            "stream": "track",
            "schema_name": "Report Created",
            "received_at": received,
            "event_time": received,
            "subject_user_id": f"u{i}",
            "payload": b'{"type":"track","event":"Report Created"}',
            "origin": f"log:shard-0:{seq}:{i}",
            "ingest_seq": seq,
        }
        for i in range(ROWS)
    ]
    return pa.Table.from_pylist(rows, schema=RAW_ARROW_SCHEMA)


class _Raw:
    """Raw commits as the processor makes them, one log record per batch."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.progress = RawProgress({}, 0)

    def commit(self) -> float:
        target = self.progress.advanced({"shard-0": self.progress.seq})
        rows = _batch(target.seq)
        start = time.perf_counter()
        append_raw(self.table, rows, self.progress, target)
        elapsed = time.perf_counter() - start
        self.progress = target
        return elapsed

    def median_ms(self) -> float:
        return statistics.median(self.commit() for _ in range(SAMPLES)) * 1000


def _metadata_kib(table: Table) -> float:
    return Path(urlparse(table.metadata_location).path).stat().st_size / 1024


def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        catalog = open_catalog(load_config(environ={"INSIGHTLOOP_DATA_DIR": root}))
        raw = _Raw(ensure_raw_table(catalog))
        for checkpoint in CHECKPOINTS:
            while len(raw.table.metadata.snapshots) < checkpoint - SAMPLES // 2:
                raw.commit()
            figures[f"metadata_kib_at_{checkpoint}_snapshots"] = _metadata_kib(raw.table)
            figures[f"raw_commit_ms_at_{checkpoint}_snapshots"] = raw.median_ms()
            print(f"  {checkpoint} snapshots: {figures[f'raw_commit_ms_at_{checkpoint}_snapshots']:.1f} ms")

        start = time.perf_counter()
        expire_snapshots(raw.table, SnapshotRetention(minutes=0, min_count=KEEP))
        figures["expiry_ms"] = (time.perf_counter() - start) * 1000
        figures[f"raw_commit_ms_after_expiry_to_{KEEP}"] = raw.median_ms()
        figures["snapshots_at_end"] = len(raw.table.metadata.snapshots)
        figures[f"metadata_kib_after_expiry_to_{KEEP}"] = _metadata_kib(raw.table)
        metadata_dir = Path(urlparse(raw.table.metadata_location).path).parent
        figures["metadata_files_at_end"] = len(list(metadata_dir.glob("*.metadata.json")))
        current = raw.table.current_snapshot()
        figures["manifests_in_current_snapshot"] = len(current.manifests(raw.table.io)) if current else 0
        figures["raw_rows_at_end"] = raw.table.scan().count()
    return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:45s} {value:12,.1f}")
