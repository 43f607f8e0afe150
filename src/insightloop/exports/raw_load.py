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
``rejected``, with the rejection JSON). Rows are numbered (``row``, in ``event_id``,
``origin`` and ``delivery``) in the order the reader parsed them; rows the CSV parser refused
come after them, keep their line's text as payload, and their delivery also names their
``line`` (record number in the file, the header being 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from insightloop.exports.limits import BadRowLimit
from insightloop.exports.raw_files import RawFileWriter
from insightloop.exports.reader import FileRejected, FileScan, ParserReject
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA, ensure_raw_table
from insightloop.lake.watermarks import RAW_SEQ, committed_property
from insightloop.processor.raw_rows import REJECTED_STREAM

EXPORT_ROWS = "raw.export_rows"
#: The stream of a file's good rows in raw.
EXPORT_STREAM = "export"
#: Snapshot property of a file's raw commit: its ``FileRecord`` as JSON.
FILE_PROPERTY = "insightloop.export.file"
#: Rows buffered before they are written as a data file.
CHUNK_ROWS = 500_000
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
    #: The sha256 of the earlier file of the same source, entity and period it replaces.
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
) -> FileRecord:
    """Write every row of ``scan`` and commit them at once; ``FileRejected`` (nothing
    committed) when the file has too many bad rows or cannot be read to its end."""
    seq = raw_seq(table) + 1
    writer = _Writer(table, identity, seq, received_at)
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
    def __init__(self, table: Table, identity: FileIdentity, seq: int, received_at: datetime) -> None:
        self._table = table
        self._identity = identity
        self._seq = seq
        self._received_us = int(received_at.timestamp() * 1_000_000)
        self._files = RawFileWriter(table)
        self.files: list[DataFile] = []
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._buffered_bytes = 0
        self._next_row = 1
        uri = msgspec.json.encode(identity.uri).decode()
        self._delivery_prefix = (
            f'{{"file":{uri},"sha256":"{identity.sha256}","period":"{identity.period}","row":'
        )

    def write_all(self, scan: FileScan, limit: BadRowLimit, progress: Progress | None) -> tuple[int, int]:
        good = bad = 0
        try:
            for batch in scan.batches:
                rows = self._rows(batch)
                problems = batch.num_rows - batch.column("rejection").null_count
                bad += problems
                good += batch.num_rows - problems
                if limit.over_count(bad):
                    raise FileRejected(
                        f"{self._identity.uri}: {limit.exceeded(bad, good + bad)} (stopped reading)"
                    )
                self._add(rows)
                if progress is not None:
                    progress(batch.num_rows, scan.progress())
        except (OSError, pa.ArrowException, duckdb.Error) as exc:
            raise FileRejected(
                f"{self._identity.uri}: cannot be read to its end: {_first_line(exc)}"
            ) from exc
        rejects = list(scan.parser_rejects())
        if rejects:
            bad += len(rejects)
            self._add(self._reject_rows(rejects))
        self._flush()
        self.files = self._files.finish()
        return good, bad

    def discard(self) -> None:
        """Delete the data files written for a commit that will not happen."""
        self._files.discard()

    def _add(self, rows: pa.Table) -> None:
        self._buffer.append(rows)
        self._buffered += rows.num_rows
        self._buffered_bytes += rows.nbytes
        if self._buffered >= CHUNK_ROWS or self._buffered_bytes >= CHUNK_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        chunk = pa.concat_tables(self._buffer)
        self._buffer, self._buffered, self._buffered_bytes = [], 0, 0
        self._files.put(chunk)

    def _numbers(self, count: int) -> pa.Array:
        start = self._next_row
        self._next_row += count
        ones = pa.repeat(pa.scalar(1, pa.int64()), count)
        return pc.add(pc.cumulative_sum(ones), start - 1)

    def _rows(self, batch: pa.RecordBatch) -> pa.Table:
        numbers = pc.cast(self._numbers(batch.num_rows), pa.string())
        rejection = batch.column("rejection")
        stream = pc.if_else(pc.is_null(rejection), EXPORT_STREAM, REJECTED_STREAM)
        payload = pc.cast(batch.column("payload"), pa.binary())
        return self._table_of(numbers, batch.num_rows, stream, payload, rejection, batch)

    def _reject_rows(self, rejects: Iterable[ParserReject]) -> pa.Table:
        """Rows the parser refused, numbered after the parsed rows; their delivery also
        names the record's ``line`` in the file (the header is line 1)."""
        found = list(rejects)
        numbers = pc.cast(self._numbers(len(found)), pa.string())
        lines = pa.array([',"line":' + str(r.line) for r in found], pa.string())
        rejection = pa.array(
            [
                msgspec.json.encode({"kind": r.kind, "field": r.column, "reason": r.reason}).decode()
                for r in found
            ],
            pa.string(),
        )
        payload = pa.array([r.text.encode() for r in found], pa.binary())
        stream = pa.repeat(pa.scalar(REJECTED_STREAM, pa.string()), len(found))
        return self._table_of(numbers, len(found), stream, payload, rejection, None, lines)

    def _table_of(
        self,
        numbers: pa.Array,
        count: int,
        stream: pa.Array,
        payload: pa.Array,
        rejection: pa.Array,
        batch: pa.RecordBatch | None,
        lines: pa.Array | None = None,
    ) -> pa.Table:
        ident = self._identity

        def const(value: object, name: str) -> pa.Array:
            return pa.repeat(pa.scalar(value, RAW_ARROW_SCHEMA.field(name).type), count)

        def column(name: str) -> pa.Array:
            kind = RAW_ARROW_SCHEMA.field(name).type
            if batch is None:
                return pa.nulls(count, kind)
            return pc.cast(batch.column(name), kind)

        columns = {
            "event_id": pc.binary_join_element_wise(ident.sha256 + ":", numbers, ""),
            "source": const(ident.source, "source"),
            "stream": stream,
            "schema_name": const(ident.entity, "schema_name"),
            "schema_version": const(ident.schema_version, "schema_version"),
            "event_time": column("event_time"),
            "received_at": pa.repeat(pa.scalar(self._received_us, pa.int64()), count).cast(
                RAW_ARROW_SCHEMA.field("received_at").type
            ),
            "subject_user_id": column("subject_user_id"),
            "subject_anonymous_id": column("subject_anonymous_id"),
            "subject_account_id": column("subject_account_id"),
            "subject_email_sha256": column("subject_email_sha256"),
            "payload": payload,
            "delivery": pc.binary_join_element_wise(
                self._delivery_prefix, numbers, lines if lines is not None else "", "}", ""
            ),
            "rejection": rejection,
            "origin": pc.binary_join_element_wise(f"file:{ident.uri}:", numbers, ""),
            "ingest_seq": pa.repeat(pa.scalar(self._seq, pa.int64()), count),
        }
        return pa.Table.from_pydict(columns, schema=RAW_ARROW_SCHEMA)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
