"""Compaction rewrites small files into one per partition without changing a single row,
atomically: a failure before its commit leaves the table exactly as it was."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import pyarrow as pa
import pytest
from processor_support import RECEIVED_AT_US, TableStage, fill, record, track
from pyiceberg.catalog import Catalog
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.transforms import DayTransform
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.lake.watermarks import LOG_POSITIONS, RAW_SEQ, committed_property
from insightloop.log.memory import MemoryLog
from insightloop.processor.compaction import Compactor
from insightloop.processor.housekeeping import Housekeeping
from insightloop.processor.intake import BatchLimits
from insightloop.processor.progress import committed_progress
from insightloop.processor.runner import Processor

DAY_US = 86_400_000_000


def files(table: Table) -> int:
    table.refresh()
    return len(list(table.scan().plan_files()))


def contents(table: Table, key: str) -> pa.Table:
    table.refresh()
    return table.scan().to_arrow().sort_by(key)


def small_raw_table(catalog: Catalog, batches: int = 8) -> Table:
    """raw.sdk_events after ``batches`` one-record commits spread over 2 sources x 2 days."""
    log = MemoryLog()
    p = Processor(log, catalog, None, BatchLimits(1, 0.01))
    for i in range(batches):
        data = record(
            [track(f"m-{i}-{j}") for j in range(5)],
            source="web" if i % 2 else "ios",
            received_at_us=RECEIVED_AT_US + (i % 4 >= 2) * DAY_US,
        )
        log.append("shard-0", [data])
        assert p.step() == 1
    return catalog.load_table(SDK_EVENTS)


def test_raw_partitions_are_rewritten_without_changing_a_row(catalog: Catalog) -> None:
    table = small_raw_table(catalog, batches=16)  # 4 partitions x 4 files
    before, progress = contents(table, "origin"), committed_progress(table)
    assert files(table) == 16

    done = Compactor(catalog, min_files=4).compact_all()

    assert (
        sorted((c.table, c.files_before, c.files_after, c.rows) for c in done)
        == [("raw.sdk_events", 4, 1, 20)] * 4
    )
    assert files(table) == 4
    assert contents(table, "origin").equals(before)
    assert committed_progress(table) == progress, "progress still found behind the compaction"


def own_properties(table: Table) -> dict[str, str]:
    """The properties of the table's current snapshot itself (not of its ancestors)."""
    table.refresh()
    snapshot = table.metadata.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    return snapshot.summary.additional_properties


def test_each_compaction_commit_carries_the_tables_progress(catalog: Catalog) -> None:
    log = MemoryLog()
    stage = TableStage(catalog)
    p = Processor(log, catalog, stage, BatchLimits(3, 0.01))
    fill(log, "shard-0", 6)
    while p.step():
        pass
    raw = catalog.load_table(SDK_EVENTS)
    before = {
        "raw": {key: own_properties(raw)[key] for key in (LOG_POSITIONS, RAW_SEQ)},
        "stage": {RAW_SEQ: own_properties(stage.table())[RAW_SEQ]},
    }
    assert before == {"raw": {LOG_POSITIONS: '{"shard-0":5}', RAW_SEQ: "6"}, "stage": {RAW_SEQ: "6"}}

    assert len(Compactor(catalog, min_files=2).compact_all()) == 2

    for name, table in (("raw", raw), ("stage", stage.table())):
        after = own_properties(table)
        assert after["insightloop.compaction"] == "rewrite-small-files", name
        assert {key: after[key] for key in before[name]} == before[name], name


def test_partitions_under_the_threshold_and_big_files_are_left_alone(catalog: Catalog) -> None:
    table = small_raw_table(catalog, batches=8)  # 4 partitions x 2 files
    assert Compactor(catalog, min_files=3).compact_all() == []
    assert Compactor(catalog, min_files=2, small_file_bytes=1).compact_all() == []
    assert files(table) == 8


def test_a_table_that_did_not_change_is_not_looked_at_again(catalog: Catalog) -> None:
    small_raw_table(catalog, batches=8)
    compactor = Compactor(catalog, min_files=2)
    assert len(compactor.compact_all()) == 4
    assert compactor.compact_all() == []


class CrashingCompactor(Compactor):
    """Writes the new files, then dies before the commit (as a kill -9 would)."""

    def _write(
        self, metadata: TableMetadata, table: Table, rows: pa.Table, commit_uuid: uuid.UUID
    ) -> Iterable[DataFile]:
        written = list(super()._write(metadata, table, rows, commit_uuid))
        assert written
        raise KeyboardInterrupt("killed mid-compaction")


def test_a_crash_during_compaction_leaves_the_table_as_it_was(catalog: Catalog) -> None:
    table = small_raw_table(catalog, batches=8)
    before, snapshot = contents(table, "origin"), table.metadata.current_snapshot_id
    with pytest.raises(KeyboardInterrupt):
        CrashingCompactor(catalog, min_files=2).compact_all()
    table.refresh()
    assert table.metadata.current_snapshot_id == snapshot
    assert contents(table, "origin").equals(before)
    assert files(table) == 8


EVENTS = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "event_time", TimestamptzType(), required=True),
    NestedField(3, "n", LongType(), required=False),
)


def _rows(table: Table, ids: range, **extra: list[object]) -> pa.Table:
    schema = table.schema().as_arrow()
    data: dict[str, list[object]] = {
        "id": [f"e{i}" for i in ids],
        "event_time": [RECEIVED_AT_US + (i % 2) * DAY_US for i in ids],
        "n": list(ids),
        **extra,
    }
    return pa.Table.from_pydict({f.name: data[f.name] for f in schema}, schema=schema)


def test_a_schema_evolved_table_keeps_old_rows_with_nulls_in_new_columns(catalog: Catalog) -> None:
    spec = PartitionSpec(PartitionField(2, 1000, DayTransform(), "event_day"))
    table = catalog.create_table("cleaned.tracks", EVENTS, partition_spec=spec)
    for start in range(0, 12, 4):
        table.append(_rows(table, range(start, start + 4)))
    with table.update_schema() as update:
        update.add_column("plan", StringType())
    for start in range(12, 24, 4):
        table.append(_rows(table, range(start, start + 4), plan=["pro"] * 4))
    table.append(_rows(table, range(24, 26), plan=["free", None]), snapshot_properties={RAW_SEQ: "9"})
    before = contents(table, "id")
    assert files(table) == 14

    Compactor(catalog, min_files=4).compact_all()

    assert files(table) == 2
    after = contents(table, "id")
    assert after.equals(before)
    assert after.filter(pa.compute.is_null(after["plan"])).num_rows == 13
    assert committed_property(table, RAW_SEQ) == "9"


CURRENT = Schema(
    NestedField(1, "user_id", StringType(), required=True),
    NestedField(2, "plan", StringType(), required=False),
    identifier_field_ids=[1],
)


def test_an_unpartitioned_current_state_table_changed_meanwhile_is_not_resurrected(catalog: Catalog) -> None:
    users = catalog.create_table("cleaned.users", CURRENT)
    for i in range(4):
        users.append(pa.Table.from_pylist([{"user_id": f"u{i}", "plan": "free"}], schema=CURRENT.as_arrow()))

    class DeleteMeanwhile(Compactor):
        """While compaction writes, another writer removes u1 (a deletion request)."""

        def _write(
            self, metadata: TableMetadata, table: Table, rows: pa.Table, commit_uuid: uuid.UUID
        ) -> Iterable[DataFile]:
            catalog.load_table("cleaned.users").delete("user_id == 'u1'")
            return super()._write(metadata, table, rows, commit_uuid)

    assert DeleteMeanwhile(catalog, min_files=4).compact_all() == []
    assert sorted(contents(users, "user_id")["user_id"].to_pylist()) == ["u0", "u2", "u3"]

    assert len(Compactor(catalog, min_files=3).compact_all()) == 1
    assert files(users) == 1
    assert sorted(contents(users, "user_id")["user_id"].to_pylist()) == ["u0", "u2", "u3"]


def test_the_processor_compacts_raw_and_stage_tables_as_it_goes(catalog: Catalog) -> None:
    log = MemoryLog()
    stage = TableStage(catalog)
    chores = Housekeeping(catalog, Compactor(catalog, min_files=4), compact_every=6)
    p = Processor(log, catalog, stage, BatchLimits(3, 0.01), housekeeping=chores)
    ids: list[str] = []
    for _ in range(13):
        ids += fill(log, "shard-0", 1)
        p.step()
        p.compact_if_due(idle=False)
    raw = catalog.load_table(SDK_EVENTS)
    assert files(raw) < 13 and files(stage.table()) < 13
    for table in (raw, stage.table()):
        values = table.scan().to_arrow()["event_id"].to_pylist()
        assert sorted(values) == sorted(ids)
    assert stage.watermark() == p.progress.seq == 13


def test_files_with_many_rows_are_not_rewritten_again(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compacted file that is still small in bytes (very compressible rows) but holds many
    rows is left alone: later rounds merge only the new small files, not the whole partition."""
    from insightloop.processor import compaction

    monkeypatch.setattr(compaction, "SMALL_FILE_ROWS", 12)  # the 4 files of 5 rows → one of 20
    table = small_raw_table(catalog, batches=16)
    Compactor(catalog, min_files=4).compact_all()
    assert files(table) == 4

    log = MemoryLog()
    p = Processor(log, catalog, None, BatchLimits(1, 0.01))
    p.start()
    offset = committed_progress(table).positions.get("shard-0", -1)
    for _ in range(offset + 1):
        log.append("shard-0", [b"already-in-raw"])  # keep MemoryLog offsets in step with raw
    for i in range(4):
        log.append("shard-0", [record([track(f"late-{i}-{j}") for j in range(2)], source="ios")])
        assert p.step() == 1
    done = Compactor(catalog, min_files=4).compact_all()
    assert [(c.files_before, c.rows) for c in done] == [(4, 8)], "only the 4 new files, not the 20-row one"


def test_one_rewrite_takes_a_bounded_number_of_rows(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compaction runs in the ingest loop: a round rewrites at most MAX_REWRITE_ROWS rows of a
    partition, and the rest is left for later rounds, with every row kept."""
    from insightloop.processor import compaction

    monkeypatch.setattr(compaction, "MAX_REWRITE_ROWS", 10)  # two files of 5 rows per rewrite
    table = small_raw_table(catalog, batches=16)  # 4 partitions x 4 files of 5 rows
    before = contents(table, "origin")
    done = Compactor(catalog, min_files=4).compact_all()
    assert sorted((c.files_before, c.rows) for c in done) == [(2, 10)] * 4
    assert files(table) == 12
    assert contents(table, "origin").equals(before)
