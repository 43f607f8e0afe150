"""Snapshot expiry keeps what the retention promises and changes nothing a reader sees:
the rows, the table's recorded progress, and the files of an older snapshot all stay."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pyarrow.parquet as pq
import pytest
from lake_support import commit, event_ids, events_table, snapshot_ids
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from insightloop.lake.maintenance import SnapshotRetention, expire_snapshots, maintain
from insightloop.lake.watermarks import LOG_POSITIONS, RAW_SEQ, committed_property

COMMITS = 30


@pytest.fixture
def table(catalog: Catalog) -> Table:
    """``COMMITS`` commits, each recording its progress, one millisecond or more apart."""
    table = events_table(catalog)
    for seq in range(1, COMMITS + 1):
        commit(table, seq)
    stamps = [s.timestamp_ms for s in sorted(table.snapshots(), key=lambda s: s.sequence_number)]
    assert stamps == sorted(set(stamps)), "each commit has its own timestamp"
    return table


def at(table: Table, index: int) -> float:
    """Unix time of the ``index``-th oldest snapshot."""
    snapshot = table.metadata.snapshot_by_id(snapshot_ids(table)[index])
    assert snapshot is not None
    return snapshot.timestamp_ms / 1000


def test_snapshots_within_the_retention_are_kept(table: Table) -> None:
    before, ids = event_ids(table), snapshot_ids(table)
    # Ten minutes after the 11th commit, with a ten-minute retention: the first ten go.
    now = at(table, 10) + 600

    assert expire_snapshots(table, SnapshotRetention(minutes=10, min_count=5), now) == 10

    assert snapshot_ids(table) == ids[10:]
    assert event_ids(table) == before
    assert committed_property(table, RAW_SEQ) == str(COMMITS)


def test_the_newest_min_count_are_kept_however_old(table: Table) -> None:
    ids = snapshot_ids(table)
    now = at(table, -1) + 86_400

    assert expire_snapshots(table, SnapshotRetention(minutes=10, min_count=5), now) == COMMITS - 5

    assert snapshot_ids(table) == ids[-5:]
    assert len(event_ids(table)) == COMMITS


def test_nothing_expires_while_every_snapshot_is_within_the_retention(table: Table) -> None:
    ids, location = snapshot_ids(table), table.metadata_location
    assert expire_snapshots(table, SnapshotRetention(minutes=10, min_count=1), at(table, 0) + 60) == 0
    assert snapshot_ids(table) == ids
    assert table.metadata_location == location, "no commit"


def test_progress_survives_expiring_all_but_the_newest(table: Table) -> None:
    expire_snapshots(table, SnapshotRetention(minutes=0, min_count=1), at(table, -1) + 1)
    assert len(snapshot_ids(table)) == 1
    assert committed_property(table, RAW_SEQ) == str(COMMITS)
    assert committed_property(table, LOG_POSITIONS) == f'{{"shard-0":{COMMITS}}}'


def test_snapshots_that_progress_is_read_from_are_never_expired(table: Table) -> None:
    """A table whose newest commits record no progress (written before compaction carried
    it, or by another tool): expiry keeps the line back to the last commit that did."""
    commit(table, COMMITS + 1, {})
    commit(table, COMMITS + 2, {})
    now = at(table, -1) + 86_400

    expire_snapshots(table, SnapshotRetention(minutes=0, min_count=1), now)

    assert len(snapshot_ids(table)) == 3
    assert committed_property(table, RAW_SEQ) == str(COMMITS)
    assert committed_property(table, LOG_POSITIONS) == f'{{"shard-0":{COMMITS}}}'
    assert len(event_ids(table)) == COMMITS + 2


def test_expiry_deletes_no_file_so_a_reader_of_an_old_snapshot_keeps_reading(table: Table) -> None:
    old = snapshot_ids(table)[4]
    pinned = [urlparse(task.file.file_path).path for task in table.scan(snapshot_id=old).plan_files()]

    expire_snapshots(table, SnapshotRetention(minutes=0, min_count=1), at(table, -1) + 1)

    assert table.metadata.snapshot_by_id(old) is None
    rows = sorted(pq.read_table(path)["event_id"].to_pylist()[0] for path in pinned)
    assert rows == sorted(f"e{seq}" for seq in range(1, 6))


def metadata_files(table: Table) -> int:
    return len(list(Path(urlparse(table.location()).path, "metadata").glob("*.metadata.json")))


def test_maintenance_bounds_the_metadata_files_of_every_lake_table(catalog: Catalog) -> None:
    table = events_table(catalog)
    commit(table, 1)
    done = maintain(catalog, SnapshotRetention(minutes=0, min_count=1))
    assert [(m.table, m.expired, m.snapshots) for m in done] == [("cleaned.events", 0, 1)]

    for seq in range(2, 41):
        commit(table, seq)
    maintain(catalog, SnapshotRetention(minutes=0, min_count=1))

    table.refresh()
    assert metadata_files(table) <= 21, "the current file and the last 20"
    assert len(table.metadata.snapshots) == 1
    assert len(event_ids(table)) == 40
