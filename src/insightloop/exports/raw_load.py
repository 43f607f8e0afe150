"""Stage 1 of a file: all of its rows into ``raw.export_rows`` in ONE Iceberg commit.

The rows stream from the reader into Parquet data files of the raw table (a chunk of rows at
a time: bounded memory), which no snapshot references yet. Once the file is read to the end,
and only if its bad rows are within the limit, one transaction appends every data file in a
single snapshot whose properties record the file (``FILE_PROPERTY``: sha256, source, entity,
period, row counts, …) and the raw sequence (``watermarks.RAW_SEQ``) it was given. So:

- a reader sees all of a file's rows or none;
- a crash before the commit leaves no rows (only unreferenced files, which this module
  deletes when it can, and which never become visible);
- the manifest of loaded files can be rebuilt from raw alone (snapshot properties, and
  each row's ``event_id`` ``<sha256>:<row>``).

Every row is kept as received: good rows (stream ``export``) and bad ones (stream
``rejected``, with the rejection JSON), numbered as ``raw_columns`` says. The rows' typed
values are staged for stage 2 as they go (``staging``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import duckdb
import msgspec
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from insightloop.exports import staging as staged_rows
from insightloop.exports.limits import BadRowLimit
from insightloop.exports.raw_columns import RawColumns
from insightloop.exports.raw_files import RawFileWriter
from insightloop.exports.reader import FileRejected, FileScan
from insightloop.exports.staging import StagingWriter
from insightloop.lake.raw_table import ensure_raw_table
from insightloop.lake.watermarks import RAW_SEQ, committed_property

EXPORT_ROWS = "raw.export_rows"
#: Snapshot property of a file's raw commit: its ``FileRecord`` as JSON.
FILE_PROPERTY = "insightloop.export.file"
#: Reader batches buffered before they are handed to the writers (as one chunk), at most;
#: and bytes.
CHUNK_BATCHES = 5
CHUNK_BYTES = 256 << 20


class FileRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the lake records about one loaded file (the manifest's entries)."""

    sha256: str
    uri: str
    source: str
    entity: str
    period: str
    contract: str
    seq: int
    rows: int
    bad_rows: int
    bytes: int
    loaded_at: str
    #: The sha256 of the earlier file of the same source, entity, period and part it replaces.
    replaces: str | None = None
    #: Which part of its period's export the file is (``landing.LandedFile.part``; "": none).
    part: str = ""


@dataclass(frozen=True)
class FileIdentity:
    uri: str
    sha256: str
    source: str
    entity: str
    period: str
    contract: str
    schema_version: str
    bytes: int
    part: str = ""


#: Called after each batch with its rows and how far through the file (0 to 1; -1: unknown).
Progress = Callable[[int, float], None]


def raw_table(catalog: Catalog) -> Table:
    return ensure_raw_table(catalog, EXPORT_ROWS)


def raw_seq(table: Table) -> int:
    value = committed_property(table, RAW_SEQ)
    return int(value) if value is not None else 0


def commit_file(
    table: Table,
    scan: FileScan,
    identity: FileIdentity,
    limit: BadRowLimit,
    received_at: datetime,
    replaces: str | None,
    progress: Progress | None = None,
    staging: Path | None = None,
) -> FileRecord:
    """Write every row of ``scan`` and commit them at once; ``FileRejected`` (nothing
    committed) when the file has too many bad rows or cannot be read to its end. With
    ``staging`` (the loader's state directory), the rows' typed values are staged there for
    stage 2 too (``staging``)."""
    seq = raw_seq(table) + 1
    stager = None
    journal = None
    if staging is not None:
        stager = StagingWriter(staging, identity.sha256, [(name, kind.sql) for name, kind in scan.typed])
        journal = partial(staged_rows.journal, staging, identity.sha256, staged_rows.RAW)
    writer = _Writer(table, identity, seq, received_at, stager, journal)
    try:
        good, bad = writer.write_all(scan, limit, progress)
        total = good + bad
        reason = limit.exceeded(bad, total)
        if reason is not None:
            raise FileRejected(f"{identity.uri}: {reason}")
        record = FileRecord(
            sha256=identity.sha256,
            uri=identity.uri,
            source=identity.source,
            entity=identity.entity,
            period=identity.period,
            contract=identity.contract,
            seq=seq,
            rows=good,
            bad_rows=bad,
            bytes=identity.bytes,
            loaded_at=received_at.isoformat(),
            replaces=replaces,
            part=identity.part,
        )
        properties = {RAW_SEQ: str(seq), FILE_PROPERTY: msgspec.json.encode(record).decode()}
        with (
            table.transaction() as tx,
            tx.update_snapshot(snapshot_properties=properties).fast_append() as add,
        ):
            for data_file in writer.files:
                add.append_data_file(data_file)
    except BaseException:
        writer.discard()
        raise
    return record


class _Writer:
    def __init__(
        self,
        table: Table,
        identity: FileIdentity,
        seq: int,
        received_at: datetime,
        stager: StagingWriter | None = None,
        journal: Callable[[str], None] | None = None,
    ) -> None:
        self._table = table
        self._identity = identity
        self._columns = RawColumns(
            uri=identity.uri,
            sha256=identity.sha256,
            source=identity.source,
            entity=identity.entity,
            period=identity.period,
            schema_version=identity.schema_version,
            seq=seq,
            received_us=int(received_at.timestamp() * 1_000_000),
        )
        self._files = RawFileWriter(table, journal)
        self._stager = stager
        self.files: list[DataFile] = []
        self._buffer: list[pa.Table] = []
        self._staged: list[pa.Table] = []
        self._buffered = 0
        self._chunk_rows = 0
        self._buffered_bytes = 0

    def write_all(self, scan: FileScan, limit: BadRowLimit, progress: Progress | None) -> tuple[int, int]:
        good = bad = 0
        typed = [name for name, _ in scan.typed]
        self._chunk_rows = scan.batch_rows * CHUNK_BATCHES
        while (batch := self._read(scan)) is not None:
            rows, staged = self._columns.parsed(batch, typed)
            problems = batch.num_rows - batch.column("rejection").null_count
            bad += problems
            good += batch.num_rows - problems
            if limit.over_count(bad):
                reason = limit.exceeded(bad, good + bad)
                raise FileRejected(f"{self._identity.uri}: {reason} (stopped reading)")
            self._add(rows, staged)
            if progress is not None:
                progress(batch.num_rows, scan.progress())
        rejects = list(scan.parser_rejects())
        if rejects:
            bad += len(rejects)
            self._add(self._columns.refused(rejects))
        self._flush()
        self.files = self._files.finish()
        if self._stager is not None:
            self._stager.finish(good)
        return good, bad

    def _read(self, scan: FileScan) -> pa.RecordBatch | None:
        """The next batch of the file (None: the end); ``FileRejected`` when the file cannot
        be read (only reading: an error writing, such as a full disk, is not the file's)."""
        try:
            return scan.batches.read_next_batch()
        except StopIteration:
            return None
        except (OSError, pa.ArrowException, duckdb.Error) as exc:
            reason = f"cannot be read to its end: {_first_line(exc)}"
            raise FileRejected(f"{self._identity.uri}: {reason}") from exc

    def discard(self) -> None:
        """Delete the data files (and staged rows) written for a commit that will not happen."""
        self._files.discard()
        if self._stager is not None:
            self._stager.discard()

    def _add(self, rows: pa.Table, staged: pa.Table | None = None) -> None:
        if staged is not None and self._stager is not None:
            self._staged.append(staged)
        self._buffer.append(rows)
        self._buffered += rows.num_rows
        self._buffered_bytes += rows.nbytes
        if self._buffered >= self._chunk_rows or self._buffered_bytes >= CHUNK_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        chunk = pa.concat_tables(self._buffer)
        self._buffer, self._buffered, self._buffered_bytes = [], 0, 0
        self._files.put(chunk)
        if self._staged and self._stager is not None:
            staged = pa.concat_tables(self._staged)
            self._staged = []
            self._stager.put(staged)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
