"""Writing a file's raw rows as Parquet data files of ``raw.export_rows``, in a thread of its
own (``background``): Parquet encoding overlaps with DuckDB reading the next rows.

Chunks are written in order into data files of the one partition every row of a file shares
(same source, same ``received_at``), rolling over to a new file at the table's target file
size. pyarrow writes them with the table's field ids and options chosen per column: the
columns of a file's constants come as dictionaries and are written as such, and no
dictionary is tried for the columns whose values are all different (``event_id``,
``payload``, hashes): trying one and falling back cost a fifth of stage 1. ``finish`` describes them
for a commit as pyiceberg's ``add_files`` does (footers: bounds, counts, partition). Nothing
references the files until the caller commits them; ``discard`` deletes them.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io import OutputStream
from pyiceberg.io.pyarrow import _determine_partitions
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionKey
from pyiceberg.table import Table, TableProperties, _parquet_files_to_data_files
from pyiceberg.utils.properties import property_as_int

from insightloop.exports.background import Background
from insightloop.exports.raw_columns import DICTIONARY_COLUMNS

_FIELD_ID = b"PARQUET:field_id"


class RawFileWriter:
    def __init__(self, table: Table, journal: Callable[[str], None] | None = None) -> None:
        """``journal`` is told each data file's path before the file is created."""
        self._table = table
        self._journal = journal
        self._uuid = uuid.uuid4()
        self._counter = itertools.count()
        self._partition: PartitionKey | None = None
        self._schema: pa.Schema | None = None
        self._paths: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._stream: OutputStream | None = None
        self._target = property_as_int(
            table.metadata.properties,
            TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
            TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
        ) or int(TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT)
        self._background: Background[pa.Table] = Background(self._put, "raw-file-writer")

    def put(self, chunk: pa.Table) -> None:
        """Queue ``chunk``; re-raises an earlier write's error."""
        self._background.put(chunk)

    def finish(self) -> list[DataFile]:
        """Wait for every queued chunk to be written; the data files."""
        self._background.finish()
        self._close()
        return list(_parquet_files_to_data_files(self._table.metadata, self._paths, self._table.io))

    def discard(self) -> None:
        """Stop (chunks still queued are not written), and delete every data file written (for
        a commit that will not happen)."""
        self._background.cancel()
        with contextlib.suppress(Exception):
            self._close()
        for path in self._paths:
            with contextlib.suppress(OSError):
                self._table.io.delete(path)
        self._paths = []

    def _put(self, chunk: pa.Table) -> None:
        if self._writer is None:
            self._open(chunk)
        assert self._writer is not None and self._schema is not None
        # One dictionary per column for the whole chunk: the writer then writes it as it is,
        # rather than decoding a dictionary that changes from one batch to the next.
        self._writer.write_table(chunk.cast(self._schema).unify_dictionaries())
        if self._stream is not None and self._stream.tell() >= self._target:
            self._close()

    def _open(self, chunk: pa.Table) -> None:
        metadata = self._table.metadata
        if self._partition is None:
            one = chunk.slice(0, 1).cast(metadata.schema().as_arrow())  # plain types, not dictionaries
            (first,) = _determine_partitions(metadata.spec(), metadata.schema(), one)
            self._partition = first.partition_key
        if self._schema is None:
            ids = {field.name: field.field_id for field in metadata.schema().fields}
            self._schema = pa.schema(
                [field.with_metadata({_FIELD_ID: str(ids[field.name]).encode()}) for field in chunk.schema]
            )
        name = f"{self._uuid}-{next(self._counter):05d}.parquet"
        path = self._table.location_provider().new_data_location(name, self._partition)
        if self._journal is not None:
            self._journal(path)
        self._paths.append(path)
        self._stream = self._table.io.new_output(path).create(overwrite=True)
        self._writer = pq.ParquetWriter(self._stream, self._schema, **_OPTIONS)

    def _close(self) -> None:
        writer, stream = self._writer, self._stream
        self._writer = self._stream = None
        if writer is not None:
            writer.close()
        if stream is not None:
            stream.close()


_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    # Besides the dictionary arrays: the rejection kinds, the load time and sequence repeat.
    "use_dictionary": [*DICTIONARY_COLUMNS, "rejection", "received_at", "ingest_seq"],
    # The arrays' own types (dictionaries) are not the table's: readers take the file's.
    "store_schema": False,
    "write_statistics": True,
}
