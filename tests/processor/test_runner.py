"""The processor's loop: one raw commit per batch carrying its log positions, stage 2 after
it, resume from raw's commits, and catch-up of stage 2 after a crash between the two."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from processor_support import TableStage, fill, record, track
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException

from insightloop.errors import TerminalError
from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.lake.watermarks import LOG_POSITIONS, RAW_SEQ
from insightloop.log.memory import MemoryLog
from insightloop.processor.intake import BatchLimits
from insightloop.processor.metrics import ProcessorMetrics
from insightloop.processor.runner import CONSUMER, Processor
from insightloop.processor.stage import DerivedStage


def processor(
    log: MemoryLog, catalog: Catalog, stage: DerivedStage | None = None, max_events: int = 1000
) -> Processor:
    return Processor(log, catalog, stage, BatchLimits(max_events, 0.01), metrics=ProcessorMetrics())


def drain(p: Processor) -> int:
    batches = 0
    while p.step():
        batches += 1
    return batches


def raw(catalog: Catalog) -> pa.Table:
    return catalog.load_table(SDK_EVENTS).scan().to_arrow()


def assert_once(table: pa.Table, column: str, expected: set[str]) -> None:
    values = table.column(column).to_pylist()
    assert len(values) == len(set(values)), f"duplicate {column}"
    assert set(values) == expected


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_each_commit_records_positions_and_the_next_sequence(catalog: Catalog) -> None:
    log = MemoryLog(shards=2)
    fill(log, "shard-0", 4)
    p = processor(log, catalog)
    assert drain(p) == 1
    fill(log, "shard-1", 2)
    assert drain(p) == 1

    table = catalog.load_table(SDK_EVENTS)
    summaries = [s.summary.additional_properties for s in table.snapshots() if s.summary is not None]
    assert [(s[LOG_POSITIONS], s[RAW_SEQ]) for s in summaries] == [
        ('{"shard-0":3}', "1"),
        ('{"shard-0":3,"shard-1":1}', "2"),
    ]
    rows = raw(catalog)
    assert sorted(pc.unique(rows["ingest_seq"]).to_pylist()) == [1, 2]
    assert rows.num_rows == (4 + 2) * 3
    assert [log.checkpoint(CONSUMER, s) for s in log.shards()] == [3, 1]
    assert log.read("shard-0", None) == [], "committed records may be trimmed"


def test_batches_close_at_max_events(catalog: Catalog) -> None:
    log = MemoryLog()
    ids = fill(log, "shard-0", 10, per_record=3)
    p = processor(log, catalog, max_events=6)
    assert drain(p) == 5
    assert p.progress.seq == 5
    rows = raw(catalog)
    assert_once(rows, "event_id", set(ids))
    per_seq = rows.group_by("ingest_seq").aggregate([("event_id", "count")])
    assert set(per_seq["event_id_count"].to_pylist()) == {6}


def test_resume_after_stop_has_no_duplicates_and_no_gaps(catalog: Catalog) -> None:
    log = MemoryLog(shards=2)
    ids = fill(log, "shard-0", 5) + fill(log, "shard-1", 3)
    drain(processor(log, catalog, max_events=4))
    ids += fill(log, "shard-0", 4) + fill(log, "shard-1", 6)
    # The advisory checkpoint is not the truth: a stale or wrong one changes nothing.
    log.save_checkpoint(CONSUMER, "shard-1", 0)
    second = processor(log, catalog, max_events=4)
    drain(second)
    rows = raw(catalog)
    assert_once(rows, "event_id", set(ids))
    assert second.progress.positions == {"shard-0": 8, "shard-1": 8}


def test_a_crash_between_the_raw_commit_and_stage_2_is_caught_up_exactly(catalog: Catalog) -> None:
    log = MemoryLog()
    stage = TableStage(catalog)
    ids = fill(log, "shard-0", 6)
    first = processor(log, catalog, stage, max_events=6)
    assert first.step() == 2

    def crash(seq: int) -> None:
        if seq == 2:
            raise RuntimeError("killed after the raw commit, before stage 2's")

    stage.fail = crash
    with pytest.raises(RuntimeError, match="killed"):
        first.step()
    assert first.progress.seq == 2 and stage.watermark() == 1

    # Restart: a new processor over the same log and lake.
    stage.fail = None
    ids += fill(log, "shard-0", 2)
    second = processor(log, catalog, stage, max_events=6)
    drain(second)
    assert stage.watermark() == second.progress.seq == 4
    assert_once(raw(catalog), "event_id", set(ids))
    assert_once(stage.rows(), "event_id", set(ids))
    assert (6, False) in stage.calls, "seq 2 re-read from raw, without decoded messages"


def test_stage_2_catches_up_on_many_sequences_it_never_saw(catalog: Catalog) -> None:
    log = MemoryLog()
    ids = fill(log, "shard-0", 20)
    drain(processor(log, catalog, None, max_events=3))  # stage 1 only: 20 sequences
    stage = TableStage(catalog)
    p = processor(log, catalog, stage)
    assert p.step() == 0
    assert stage.watermark() == 20
    assert_once(stage.rows(), "event_id", set(ids))
    assert len(stage.calls) < 20, "read back in windows of several sequences"


def test_the_loop_retries_a_transient_failure_and_stops_on_request(catalog: Catalog) -> None:
    log = MemoryLog()
    stage = TableStage(catalog)
    failures = [CommitFailedException("another writer first")]

    def conflict_once(seq: int) -> None:
        if failures:
            raise failures.pop()

    stage.fail = conflict_once
    p = processor(log, catalog, stage, max_events=5)
    stop = threading.Event()
    thread = threading.Thread(target=p.run, args=(stop,))
    thread.start()
    try:
        ids = fill(log, "shard-0", 4)
        wait_until(lambda: stage.watermark() >= 1 and p.progress.positions.get("shard-0") == 3, "first rows")
        ids += fill(log, "shard-0", 3)
        wait_until(lambda: p.progress.positions.get("shard-0") == 6, "more rows")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert_once(raw(catalog), "event_id", set(ids))
    assert_once(stage.rows(), "event_id", set(ids))
    errors = p.metrics.registry.get_sample_value(
        "insightloop_processor_errors_total", {"where": "stage2", "kind": "transient"}
    )
    assert errors == 1


def test_a_terminal_failure_ends_the_loop_with_the_error(catalog: Catalog) -> None:
    log = MemoryLog()
    stage = TableStage(catalog)

    def broken(seq: int) -> None:
        raise TerminalError("contract registry is unreadable")

    stage.fail = broken
    fill(log, "shard-0", 1)
    with pytest.raises(TerminalError, match="unreadable"):
        processor(log, catalog, stage).run(threading.Event())
    assert raw(catalog).num_rows == 3, "raw kept what it committed"


def test_a_garbage_record_does_not_stall_the_processor(catalog: Catalog) -> None:
    log = MemoryLog()
    log.append("shard-0", [b"\x00garbage", record([track("m-1")])])
    p = processor(log, catalog)
    drain(p)
    rows = raw(catalog).sort_by("origin")
    assert rows["stream"].to_pylist() == ["rejected", "track"]
    assert p.progress.positions == {"shard-0": 1}


def test_metrics_count_what_was_committed(catalog: Catalog) -> None:
    log = MemoryLog()
    fill(log, "shard-0", 4, per_record=2)
    log.append("shard-0", [b"junk"])
    p = processor(log, catalog, max_events=4)
    drain(p)
    sample = p.metrics.registry.get_sample_value
    assert sample("insightloop_processor_raw_rows_committed_total") == 9
    assert sample("insightloop_processor_log_records_read_total") == 5
    assert sample("insightloop_processor_batches_total") == 3
    assert sample("insightloop_processor_rejected_rows_total", {"kind": "malformed_json"}) == 1
    assert sample("insightloop_processor_raw_seq") == 3
    assert sample("insightloop_processor_lag_records", {"shard": "shard-0"}) == 0


def test_an_empty_log_commits_nothing(catalog: Catalog) -> None:
    p = processor(MemoryLog(), catalog, TableStage(catalog))
    assert p.step() == 0
    assert catalog.load_table(SDK_EVENTS).metadata.current_snapshot() is None


def test_a_stage_ahead_of_raw_is_a_terminal_error_not_silent_skipping(catalog: Catalog) -> None:
    log = MemoryLog()
    stage = TableStage(catalog)
    stage.table().append(
        pa.Table.from_pylist(
            [{"event_id": "x", "origin": "o", "ingest_seq": 5}], schema=stage.table().schema().as_arrow()
        ),
        snapshot_properties={RAW_SEQ: "5"},
    )
    fill(log, "shard-0", 1)
    with pytest.raises(TerminalError, match="was the raw table replaced"):
        processor(log, catalog, stage).step()
