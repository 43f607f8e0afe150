"""The processor expires old snapshots of every lake table as it goes: tables keep a
bounded history however many batches it commits, and a restart after expiry resumes
exactly where the lake says, with no event twice and none missing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from processor_support import TableStage, fill
from pyiceberg.catalog import Catalog

from insightloop.config import load_config
from insightloop.lake.catalog import lake_tables, open_catalog
from insightloop.lake.maintenance import SnapshotRetention, maintain
from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.lake.watermarks import COMPACTION
from insightloop.log.memory import MemoryLog
from insightloop.processor.compaction import Compactor
from insightloop.processor.housekeeping import Housekeeping
from insightloop.processor.intake import BatchLimits
from insightloop.processor.metrics import ProcessorMetrics
from insightloop.processor.runner import Processor, cleaned_stage
from insightloop.processor.stage import DerivedStage


def keep_newest(min_count: int) -> SnapshotRetention:
    """Expire every snapshot older than now but the newest ``min_count``."""
    return SnapshotRetention(minutes=0, min_count=min_count)


def processor(
    log: MemoryLog,
    catalog: Catalog,
    stage: DerivedStage | None,
    clock: Callable[[], float] = time.monotonic,
    **housekeeping: Any,
) -> Processor:
    """One record (3 events) per batch; ``housekeeping`` are ``Housekeeping``'s options."""
    metrics = ProcessorMetrics()
    chores = Housekeeping(catalog, metrics=metrics, clock=clock, **housekeeping)
    return Processor(
        log, catalog, stage, BatchLimits(3, 0.01), housekeeping=chores, metrics=metrics, clock=clock
    )


def drain(p: Processor) -> None:
    while p.step():
        pass


def assert_once(rows: pa.Table, expected: list[str], column: str = "event_id") -> None:
    values = rows[column].to_pylist()
    assert len(values) == len(set(values)), "duplicates"
    assert set(values) == set(expected), "gaps"


def snapshots(catalog: Catalog, identifier: str) -> int:
    return len(catalog.load_table(identifier).metadata.snapshots)


def test_a_restart_after_expiry_resumes_exactly(catalog: Catalog) -> None:
    log = MemoryLog(shards=2)
    stage = TableStage(catalog)
    ids = fill(log, "shard-0", 5) + fill(log, "shard-1", 4)
    first = processor(log, catalog, stage, compactor=Compactor(catalog, min_files=2), compact_every=1)
    drain(first)
    first.compact_if_due(idle=False)  # the newest commit of both tables is now a compaction's
    for identifier in (SDK_EVENTS, stage.identifier):
        newest = catalog.load_table(identifier).metadata.current_snapshot()
        assert newest is not None and newest.summary is not None
        assert COMPACTION in newest.summary.additional_properties

    maintain(catalog, keep_newest(1))
    assert snapshots(catalog, SDK_EVENTS) == snapshots(catalog, stage.identifier) == 1

    # Restart: a new processor over the same log and lake, and more traffic.
    ids += fill(log, "shard-0", 3) + fill(log, "shard-1", 2)
    second = processor(log, catalog, stage)
    drain(second)

    assert second.progress.seq == 14
    assert second.progress.positions == {"shard-0": 7, "shard-1": 5}
    assert stage.watermark() == 14
    assert_once(catalog.load_table(SDK_EVENTS).scan().to_arrow(), ids)
    assert_once(stage.rows(), ids)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_tables_keep_a_bounded_history_over_many_batches(catalog: Catalog) -> None:
    log = MemoryLog()
    stage = TableStage(catalog)
    clock = [0.0]  # one second per batch, maintenance every ten
    p = processor(
        log,
        catalog,
        stage,
        compactor=Compactor(catalog, min_files=4),
        compact_every=7,
        retention=keep_newest(5),
        maintain_every=10.0,
        clock=lambda: clock[0],
    )
    ids = fill(log, "shard-0", 60)
    history: list[int] = []
    while p.step():
        clock[0] += 1
        p.compact_if_due(idle=False)
        p.maintain_if_due()
        history.append(max(snapshots(catalog, SDK_EVENTS), snapshots(catalog, stage.identifier)))

    assert p.progress.seq == 60
    assert max(history) <= 5 + 10 + 2, "the newest 5, plus at most 10 batches and their compactions"
    expired = p.metrics.registry.get_sample_value
    assert expired("insightloop_processor_snapshots_expired_total", {"table": SDK_EVENTS}) >= 40
    assert_once(catalog.load_table(SDK_EVENTS).scan().to_arrow(), ids)
    assert_once(stage.rows(), ids)


def test_the_running_loop_expires_snapshots(catalog: Catalog) -> None:
    log = MemoryLog()
    stage = TableStage(catalog)
    p = processor(log, catalog, stage, retention=keep_newest(3), maintain_every=0.0)
    ids = fill(log, "shard-0", 12)
    stop = threading.Event()
    thread = threading.Thread(target=p.run, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: stage.watermark() == 12, "every batch")
        wait_until(lambda: snapshots(catalog, SDK_EVENTS) <= 4, "raw's expiry")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert snapshots(catalog, stage.identifier) <= 4
    assert_once(stage.rows(), ids)


def test_the_cleaned_stage_keeps_committing_to_tables_expired_under_it(tmp_path: Path) -> None:
    """The real stage 2 holds table handles across batches; expiry and the table-property
    commit (from other handles) between its commits change nothing it writes."""
    # Its events are arbitrary: the repository's contracts are off.
    config = load_config(
        environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"), "INSIGHTLOOP__CONTRACTS__MODE": "off"}
    )
    catalog = open_catalog(config)
    stage = cleaned_stage(catalog, config)
    assert stage is not None
    log = MemoryLog()
    p = processor(log, catalog, stage, retention=keep_newest(1), maintain_every=0.0)
    ids: list[str] = []
    for _ in range(6):
        ids += fill(log, "shard-0", 1)
        assert p.step() == 1
        p.maintain_if_due()

    tables = [".".join(identifier) for identifier in lake_tables(catalog)]
    assert {"raw.sdk_events", "cleaned.tracks"} <= set(tables)
    assert all(snapshots(catalog, name) <= 2 for name in tables), "expired as it went"
    assert_once(catalog.load_table("cleaned.tracks").scan().to_arrow(), ids, column="id")
    assert stage.watermark() == p.progress.seq == 6
