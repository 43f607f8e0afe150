"""Writing a file's raw rows as Parquet data files of ``raw.export_rows``, in a thread of its
own: Parquet encoding (half of stage 1's time) overlaps with DuckDB reading the next rows.

Chunks are queued (at most ``QUEUE`` of them wait: bounded memory) and written in order as
data files of the one partition every row of a file shares (same source, same
``received_at``): the partition is found from one row, not by pyiceberg grouping each chunk.
Nothing references the files until the caller commits them; ``discard`` deletes them.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import uuid

import pyarrow as pa
from pyiceberg.io.pyarrow import _determine_partitions, bin_pack_arrow_table, pyarrow_to_schema, write_file
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionKey
from pyiceberg.table import Table, TableProperties, WriteTask
from pyiceberg.utils.properties import property_as_int

#: Chunks waiting to be written, at most.
QUEUE = 2


class RawFileWriter:
    def __init__(self, table: Table) -> None:
        self._table = table
        self._uuid = uuid.uuid4()
        self._counter = itertools.count()
        self._partition: PartitionKey | None = None
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=QUEUE)
        self._error: BaseException | None = None
        self._cancelled = False
        self._files: list[DataFile] = []
        self._thread = threading.Thread(target=self._run, name="raw-file-writer", daemon=True)
        self._thread.start()

    def put(self, chunk: pa.Table) -> None:
        """Queue ``chunk`` (waits while ``QUEUE`` chunks wait); re-raises a write's error."""
        self._raise()
        self._queue.put(chunk)

    def finish(self) -> list[DataFile]:
        """Wait for every queued chunk to be written; the data files."""
        self._stop()
        self._raise()
        return list(self._files)

    def discard(self) -> None:
        """Stop (chunks still queued are not written), and delete every data file written (for
        a commit that will not happen)."""
        self._cancelled = True
        self._stop()
        for data_file in self._files:
            with contextlib.suppress(OSError):
                self._table.io.delete(data_file.file_path)
        self._files = []

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is not None or self._cancelled:
                continue  # drain: the producer sees the error at its next put
            try:
                self._files.extend(self._write(chunk))
            except BaseException as exc:  # handed to the producer
                self._error = exc

    def _write(self, chunk: pa.Table) -> list[DataFile]:
        metadata = self._table.metadata
        if self._partition is None:
            (first,) = _determine_partitions(metadata.spec(), metadata.schema(), chunk.slice(0, 1))
            self._partition = first.partition_key
        schema = pyarrow_to_schema(
            chunk.schema, name_mapping=metadata.schema().name_mapping, format_version=metadata.format_version
        )
        target = property_as_int(
            metadata.properties,
            TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
            TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
        )
        tasks = [
            WriteTask(self._uuid, next(self._counter), schema, batches, partition_key=self._partition)
            for batches in bin_pack_arrow_table(
                chunk, target or TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT
            )
        ]
        return list(write_file(self._table.io, metadata, iter(tasks)))
