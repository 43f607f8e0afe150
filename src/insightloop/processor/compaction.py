"""Compaction: rewrite a partition's many small data files into one, atomically.

Every micro-batch adds a file per touched partition, so tables collect small files (slow
scans, big manifests). For each table of the lake's namespaces, a partition holding at
least ``min_files`` files smaller than ``small_file_bytes`` has exactly those files
rewritten into one (or a few, at the table's target file size): an Iceberg OVERWRITE that
deletes the small files and adds the new one in a single catalog commit, so a reader sees
either the old files or the new, never both or neither, and a crash before the commit
leaves the table as it was (at worst with unreferenced files on disk).

Only small files are rewritten (Iceberg's bin-pack strategy), not whole partitions: a day
partition of raw can hold terabytes and is appended to all day, so rewriting all of it
each time would cost more than the small files do. pyiceberg 0.12 has no rewrite API
(apache/iceberg-python#1092), so this builds the snapshot from public parts
(``Transaction.update_snapshot().overwrite()``, ``ArrowScan``) plus the writer that
``Table.append`` itself uses (``_dataframe_to_data_files``).

Safe by construction:
- rows are read through the table's current schema (old files missing a newer column
  read it as null) and the new files are written in the current schema and spec; files of
  older partition specs are left alone;
- a partition with delete files (merge-on-read, not written by pyiceberg) is skipped;
- the commit names exactly the files it replaces: if any of them was removed meanwhile (a
  purge, an upsert of the current-state table rewriting it), pyiceberg's validation fails
  the commit, and nothing is resurrected;
- row counts are checked before committing;
- no file is deleted: readers may be reading old snapshots; reclaiming space is the
  retention job's business (see PITFALLS);
- the commit carries the table's progress (``watermarks.progress_properties``), so the
  current snapshot still records it and expiring the snapshots before it loses nothing.
  If pyiceberg retries the commit on top of another writer's, the carried values are
  still the newest: the only writer that records progress is the processor, whose loop
  runs compaction between its own commits.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence

import msgspec
import pyarrow as pa
import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile, DataFileContent
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.typedef import Identifier, Record

from insightloop.errors import TerminalError
from insightloop.lake.catalog import NAMESPACES, lake_tables
from insightloop.lake.ownership import Owns, any_table
from insightloop.lake.watermarks import COMPACTION, progress_properties
from insightloop.processor.metrics import ProcessorMetrics

_log = structlog.get_logger(__name__)

#: Files at least this big are left alone. A busy stream's micro-batches already write files
#: of several MB (50K events ≈ 8 MB of raw Parquet): rewriting those would write the lake
#: twice for little gain, so only the files of quiet moments are merged.
SMALL_FILE_BYTES = 4 << 20
#: Files of at least this many rows are left alone too, whatever their size: a table whose
#: rows compress very well would otherwise re-read and rewrite its whole, growing partition
#: (earlier compactions' output included) on every round. A stream at 25K events/s writes
#: files this big every second; its small files are those of quieter moments.
SMALL_FILE_ROWS = 20_000
#: One rewrite takes at most this many rows: compaction runs in the ingest loop, so each
#: round must stay short (rewriting 580K raw rows stalled the processor ~6 s, p95 latency 15 s).
MAX_REWRITE_ROWS = 200_000
#: Snapshot property naming the operation, for people reading a table's history.
COMPACTION_PROPERTY = COMPACTION


class Compacted(msgspec.Struct, frozen=True):
    """One partition rewritten."""

    table: str
    partition: str
    files_before: int
    files_after: int
    rows: int


class Compactor:
    def __init__(
        self,
        catalog: Catalog,
        min_files: int,
        *,
        namespaces: Sequence[str] = NAMESPACES,
        owns: Owns = any_table,
        small_file_bytes: int = SMALL_FILE_BYTES,
        metrics: ProcessorMetrics | None = None,
    ) -> None:
        """``owns``: which tables of ``namespaces`` this process writes (``lake.ownership``)."""
        self._catalog = catalog
        self._owns = owns
        self._min_files = max(min_files, 2)
        self._namespaces = namespaces
        self._small = small_file_bytes
        self._metrics = metrics
        #: Table → the snapshot it was last checked at: an unchanged table needs no new look.
        self._checked: dict[Identifier, int | None] = {}

    def tables(self) -> list[Identifier]:
        """The tables of the lake's namespaces this process writes."""
        return [
            identifier
            for identifier in lake_tables(self._catalog, self._namespaces)
            if self._owns(identifier)
        ]

    def compact_all(self, max_tables: int | None = None) -> list[Compacted]:
        """Compact every table that changed since it was last looked at; with ``max_tables``,
        stop after rewriting that many tables (the next call goes on with the others)."""
        done: list[Compacted] = []
        rewritten = 0
        for identifier in self.tables():
            if max_tables is not None and rewritten >= max_tables:
                break
            table = self._catalog.load_table(identifier)
            snapshot = table.metadata.current_snapshot()
            snapshot_id = snapshot.snapshot_id if snapshot is not None else None
            if identifier in self._checked and self._checked[identifier] == snapshot_id:
                continue
            compacted = self.compact(table)
            done.extend(compacted)
            rewritten += bool(compacted)
            after = table.metadata.current_snapshot()
            self._checked[identifier] = after.snapshot_id if after is not None else None
        return done

    def compact(self, table: Table) -> list[Compacted]:
        """Rewrite each partition's small files of ``table``, one commit per partition."""
        done: list[Compacted] = []
        for partition, tasks in self._candidates(table):
            result = self._rewrite(table, partition, tasks)
            if result is not None:
                done.append(result)
        return done

    def _candidates(self, table: Table) -> list[tuple[Record, list[FileScanTask]]]:
        if table.metadata.current_snapshot() is None:
            return []
        spec_id = table.metadata.default_spec_id
        small: dict[Record, list[FileScanTask]] = defaultdict(list)
        has_deletes: set[Record] = set()
        for task in table.scan().plan_files():
            data_file = task.file
            if task.delete_files:
                has_deletes.add(data_file.partition)
            if (
                data_file.spec_id == spec_id
                and data_file.content == DataFileContent.DATA
                and data_file.file_size_in_bytes < self._small
                and data_file.record_count < SMALL_FILE_ROWS
            ):
                small[data_file.partition].append(task)
        return [
            (partition, _bounded(tasks))
            for partition, tasks in small.items()
            if len(tasks) >= self._min_files and partition not in has_deletes
        ]

    def _rewrite(self, table: Table, partition: Record, tasks: list[FileScanTask]) -> Compacted | None:
        name = ".".join(table.name())
        metadata = table.metadata
        expected = sum(task.file.record_count for task in tasks)
        rows = ArrowScan(metadata, table.io, metadata.schema(), AlwaysTrue()).to_table(tasks)
        if rows.num_rows != expected:
            raise TerminalError(
                f"compaction of {name} partition {partition} read {rows.num_rows} rows from "
                f"{len(tasks)} files whose metadata says {expected}: not committing"
            )
        old_files = [task.file for task in tasks]
        try:
            new_files = self._replace(table, old_files, rows)
        except (CommitFailedException, ValidationException) as exc:
            # Another writer changed these files first; the next round looks again.
            table.refresh()
            _log.warning("compaction skipped: table changed meanwhile", table=name, error=str(exc))
            return None
        result = Compacted(name, str(partition), len(old_files), new_files, rows.num_rows)
        _log.info("compacted", table=name, partition=str(partition), files=len(old_files), rows=rows.num_rows)
        if self._metrics is not None:
            self._metrics.compactions.labels(name).inc()
            self._metrics.compacted_files.labels(name).inc(len(old_files))
        return result

    def _replace(self, table: Table, old_files: Iterable[DataFile], rows: pa.Table) -> int:
        """One commit: delete ``old_files``, add ``rows`` as new files. Returns files added."""
        added = 0
        properties = {**progress_properties(table), COMPACTION_PROPERTY: "rewrite-small-files"}
        with table.transaction() as tx:
            update = tx.update_snapshot(snapshot_properties=properties)
            with update.overwrite() as overwrite:
                for data_file in old_files:
                    overwrite.delete_data_file(data_file)
                for data_file in self._write(tx.table_metadata, table, rows, overwrite.commit_uuid):
                    overwrite.append_data_file(data_file)
                    added += 1
        return added

    def _write(
        self, metadata: TableMetadata, table: Table, rows: pa.Table, commit_uuid: uuid.UUID
    ) -> Iterable[DataFile]:
        """The new data files (a seam: tests make it fail to simulate a crash mid-compaction)."""
        return _dataframe_to_data_files(table_metadata=metadata, df=rows, io=table.io, write_uuid=commit_uuid)


def _bounded(tasks: list[FileScanTask]) -> list[FileScanTask]:
    """The first files whose rows add up to at most ``MAX_REWRITE_ROWS`` (at least two)."""
    chosen: list[FileScanTask] = []
    rows = 0
    for task in tasks:
        if len(chosen) >= 2 and rows + task.file.record_count > MAX_REWRITE_ROWS:
            break
        chosen.append(task)
        rows += task.file.record_count
    return chosen
