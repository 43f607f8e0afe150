"""Reading an export file as a stream of raw rows, with DuckDB: never a Python loop over rows.

``open_scan`` checks the file's header against its contract (header drift), then runs one
DuckDB query over the file that yields, per row, the payload (the row's fields as text, a
JSON object keyed by the file's header names; a JSON line as received), the updated-at time,
the subject keys, and the row's first problem (a required value missing, a value that does
not cast to its column's type, a JSON line that is not an object) as a rejection JSON. The
rows stream as Arrow record batches of ``batch_rows`` rows; DuckDB's memory limit bounds the
rest, so a file of any size is read in bounded memory.

A local file is read by path; a file of any other ``pyarrow.fs`` filesystem (S3) through that
filesystem, registered with DuckDB as an fsspec filesystem.

CSV is read with the contract's delimiter, quote, escape and encoding (``utf-8`` with or
without BOM, ``latin-1``, ``utf-16``), embedded newlines in quoted fields, gzip or zstd. Rows
DuckDB's parser refuses (a wrong column count, bytes that are not in the encoding, an
unterminated quote, which swallows the rest of the file as one row) are not in the stream:
``parser_rejects`` returns them once the stream is drained (DuckDB's ``store_rejects``),
each with its record number in the file (the header is record 1) and the line's text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
from fsspec.implementations.arrow import ArrowFSWrapper

from insightloop.errors import TerminalError
from insightloop.exports.contract import STRING, ColumnType, ExportContract
from insightloop.exports.header import csv_header, json_header, parquet_header
from insightloop.exports.landing import LandedFile
from insightloop.exports.sql import ident, json_path, lit
from insightloop.types import FailureKind

#: A row the CSV parser refused because of its column count (not a ``FailureKind``).
WRONG_COLUMN_COUNT = "wrong_column_count"
#: Any other row the CSV parser refused (e.g. an unterminated quote).
MALFORMED_ROW = "malformed_row"
_REJECT_KINDS = {
    "MISSING COLUMNS": WRONG_COLUMN_COUNT,
    "TOO MANY COLUMNS": WRONG_COLUMN_COUNT,
    "INVALID ENCODING": FailureKind.INVALID_UTF8.value,
    "INVALID UNICODE": FailureKind.INVALID_UTF8.value,
}
#: The protocol under which DuckDB reads a non-local landing zone.
LANDING_PROTOCOL = "landing"
_SUBJECT_COLUMNS = {
    "user_id": "subject_user_id",
    "anonymous_id": "subject_anonymous_id",
    "account_id": "subject_account_id",
}


class FileRejected(TerminalError):
    """The file cannot be loaded as it is (header drift against its contract, unreadable,
    too many bad rows); nothing of it is committed."""


@dataclass(frozen=True)
class ParserReject:
    line: int
    kind: str
    column: str | None
    text: str
    reason: str


@dataclass
class FileScan:
    """An opened file: its header, the columns it gives the cleaned table, and its rows."""

    header: list[str]
    #: Columns of the file that reach the cleaned table (the contract's and, under the
    #: ``add`` policy, new ones), by name.
    columns: list[str]
    #: Each of ``columns`` with its type: the batches carry its typed value as
    #: ``typed_name(i)`` (what the cleaned table gets, computed once here).
    typed: list[tuple[str, ColumnType]]
    batches: pa.RecordBatchReader
    #: Rows per batch, at most.
    batch_rows: int
    _connection: duckdb.DuckDBPyConnection
    _rejects_table: str | None

    def parser_rejects(self) -> Iterator[ParserReject]:
        """Rows the CSV parser refused, one per record (call after draining ``batches``)."""
        if self._rejects_table is None:
            return
        rows = self._connection.sql(
            f"SELECT line, min(error_type), min(column_name), any_value(csv_line), min(error_message) "
            f"FROM {self._rejects_table} GROUP BY line ORDER BY line"
        ).fetchall()
        for line, error_type, column, text, message in rows:
            kind = _REJECT_KINDS.get(str(error_type), MALFORMED_ROW)
            column = None if kind == WRONG_COLUMN_COUNT else column  # no one column is to blame
            yield ParserReject(int(line), kind, column, str(text or ""), str(message or error_type))

    def progress(self) -> float:
        """How far the reader is through the file, 0 to 1 (DuckDB's estimate; -1: unknown)."""
        done = self._connection.query_progress()
        return done / 100 if done >= 0 else -1.0

    def close(self) -> None:
        self._connection.close()


def connect(memory_limit: str, threads: int = 2) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(f"SET memory_limit = {lit(memory_limit)}")
    connection.execute(f"SET threads = {int(threads)}")
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET enable_progress_bar = false")
    return connection


def open_scan(file: LandedFile, contract: ExportContract, batch_rows: int, memory_limit: str) -> FileScan:
    """Check ``file``'s header against ``contract`` and start streaming its rows;
    ``FileRejected`` when the header (or the file) cannot be read under the contract."""
    connection = connect(memory_limit)
    try:
        return _open(connection, file, contract, batch_rows)
    except (duckdb.Error, OSError, pa.ArrowException) as exc:
        connection.close()
        raise FileRejected(f"{file.uri}: cannot be read: {_first_line(exc)}") from exc
    except BaseException:
        connection.close()
        raise


def _open(
    connection: duckdb.DuckDBPyConnection, file: LandedFile, contract: ExportContract, batch_rows: int
) -> FileScan:
    rejects: str | None = None
    compression = lit(file.compression or "none")
    path = duckdb_path(connection, file)
    if file.format == "csv":
        header = csv_header(file, contract.csv)
        _check_header(file, contract, header)
        options = contract.csv
        as_text = "{" + ", ".join(f"{lit(name)}: 'VARCHAR'" for name in header) + "}"
        rejects = "rejects"
        source = (
            f"read_csv({lit(path)}, header = true, auto_detect = false, columns = {as_text}, "
            f"delim = {lit(options.delimiter)}, quote = {lit(options.quote)}, "
            f"escape = {lit(options.escape)}, encoding = {lit(options.encoding)}, "
            f"compression = {compression}, strict_mode = true, store_rejects = true, "
            f"rejects_table = {lit(rejects)}, rejects_scan = 'rejects_scan')"
        )
        text = {name: f"src.{ident(name)}" for name in header}
        payload = _json_object(header, text)
        malformed = "false"
    elif file.format == "jsonl":
        source = f"read_ndjson_objects({lit(path)}, compression = {compression}, ignore_errors = true)"
        header = json_header(connection, source)
        _check_header(file, contract, header)
        text = {name: f"json_extract_string(src.json, {json_path(name)})" for name in header}
        payload = "coalesce(src.json::VARCHAR, '')"
        malformed = "(src.json IS NULL OR json_type(src.json) <> 'OBJECT')"
    elif file.format == "parquet":
        header = parquet_header(file)
        _check_header(file, contract, header)
        source = f"read_parquet({lit(path)})"
        text = {name: f"CAST(src.{ident(name)} AS VARCHAR)" for name in header}
        payload = _json_object(header, text)
        malformed = "false"
    else:
        raise FileRejected(f"{file.uri}: not an export file (.csv, .jsonl, .parquet, optionally .gz/.zst)")
    columns = _cleaned_columns(contract, header)
    query = _select(contract, header, text, payload, malformed, source, columns)
    batches = connection.sql(query).to_arrow_reader(batch_rows)
    typed = [(name, contract.column_type(name)) for name in columns]
    return FileScan(header, columns, typed, batches, batch_rows, connection, rejects)


class _LandingFileSystem(ArrowFSWrapper):  # type: ignore[misc]
    """A ``pyarrow.fs`` filesystem as fsspec, under a protocol of its own, for DuckDB."""

    protocol = LANDING_PROTOCOL

    @classmethod
    def _strip_protocol(cls, path: str) -> str:  # the first part is a bucket, not a host
        return path.removeprefix(f"{LANDING_PROTOCOL}://")


def duckdb_path(connection: duckdb.DuckDBPyConnection, file: LandedFile) -> str:
    """How DuckDB reads ``file``: a local path as it is; any other filesystem (S3 in
    production) through the same ``pyarrow.fs`` object that listed it, registered with DuckDB
    (no DuckDB extension to download)."""
    if isinstance(file.filesystem, pafs.LocalFileSystem):
        return file.path
    connection.register_filesystem(_LandingFileSystem(file.filesystem))
    return f"{LANDING_PROTOCOL}://{file.path.lstrip('/')}"


def _check_header(file: LandedFile, contract: ExportContract, header: list[str]) -> None:
    missing = sorted(contract.must_have - set(header))
    if missing:
        raise FileRejected(f"{file.uri}: required column(s) missing from the header: {', '.join(missing)}")
    new = [name for name in header if name not in contract.columns]
    if new and contract.new_columns == "reject":
        raise FileRejected(f"{file.uri}: column(s) not in contract {contract.key}: {', '.join(new)}")
    if len(set(header)) != len(header):
        raise FileRejected(f"{file.uri}: the header names a column twice")


def _cleaned_columns(contract: ExportContract, header: list[str]) -> list[str]:
    present = [name for name in contract.columns if name in header]
    if contract.new_columns == "add":
        present += [name for name in header if name not in contract.columns]
    return present


def _json_object(header: list[str], text: dict[str, str]) -> str:
    if not header:
        return "'{}'"
    if all(header) and len({name.lower() for name in header}) == len(header):
        # to_json of a struct: the same text as json_object, about a third cheaper; a struct
        # cannot have an empty field name, nor two that differ only in case.
        fields = ", ".join(f"{lit(name)}: {text[name]}" for name in header)
        return f"to_json({{{fields}}})::VARCHAR"
    pairs = ", ".join(f"{lit(name)}, {text[name]}" for name in header)
    return f"json_object({pairs})::VARCHAR"


def typed_value(text: str, kind: ColumnType) -> str:
    """A column's typed value from its text: the text itself for a string, else the text
    trimmed and cast (empty: null; not castable: null). Stage 1 (here) and stage 2 deriving
    cleaned from raw (``cleaned``) both use it, so both give the same values."""
    if kind is STRING:
        return text
    return f"TRY_CAST(NULLIF(trim({text}), '') AS {kind.sql})"


def typed_name(index: int) -> str:
    """The name of the ``index``-th typed column in a scan's batches."""
    return f"__insightloop_t{index}"


def _select(
    contract: ExportContract,
    header: list[str],
    text: dict[str, str],
    payload: str,
    malformed: str,
    source: str,
    columns: list[str],
) -> str:
    """The raw row of each file row (payload, event time, subjects, first problem) and its
    typed values for the cleaned table (``typed_name(i)`` for ``columns[i]``)."""
    typed = [
        f"{typed_value(text[name], contract.column_type(name))} AS {typed_name(i)}"
        for i, name in enumerate(columns)
    ]
    typed_sql = ", ".join(typed) if typed else "NULL AS __insightloop_none"
    typed_of = {name: typed_name(i) for i, name in enumerate(columns)}
    checks: list[tuple[str, str, str, str]] = [
        (malformed, FailureKind.MALFORMED_JSON.value, "NULL", "'not a JSON object'")
    ]
    for name in contract.columns:
        if name not in text:
            continue  # an optional column the file lacks: null
        value = f"NULLIF(trim({text[name]}), '')"
        if name in contract.must_have:
            reason = lit(f"required column {name} has no value")
            checks.append((f"{value} IS NULL", FailureKind.MISSING_FIELD.value, lit(name), reason))
        kind = contract.column_type(name)
        if kind is not STRING:
            reason = f"{lit(name + ': ')} || left({text[name]}, 80) || {lit(' is not a ' + kind.sql)}"
            # The typed value is computed once (the cleaned table gets it too): null from a
            # value that is there means the value does not cast.
            bad = f"{typed_of[name]} IS NULL AND {value} IS NOT NULL"
            checks.append((bad, FailureKind.WRONG_TYPE.value, lit(name), reason))
    # Each check is evaluated once per row (the number of the first that fails); the
    # rejection JSON is built for the rare rows that fail one.
    failed_sql = "CASE " + " ".join(f"WHEN {c} THEN {i}" for i, (c, _, _, _) in enumerate(checks)) + " END"
    rejection_sql = (
        "CASE __insightloop_failed "
        + " ".join(
            f"WHEN {i} THEN json_object('kind', {lit(k)}, 'field', {f}, 'reason', {r})::VARCHAR"
            for i, (_, k, f, r) in enumerate(checks)
        )
        + " END"
    )
    updated = contract.updated_at
    if updated is not None and updated in typed_of and contract.column_type(updated).sql == "TIMESTAMPTZ":
        event_time = typed_of[updated]
    elif updated is not None and updated in text:
        event_time = f"TRY_CAST(NULLIF(trim({text[updated]}), '') AS TIMESTAMPTZ)"
    else:
        event_time = "NULL::TIMESTAMPTZ"
    subjects = []
    for key, column in _SUBJECT_COLUMNS.items():
        found = contract.subject_keys.get(key)
        value = f"NULLIF(trim({text[found]}), '')" if found in text and found is not None else "NULL"
        subjects.append(f"{value}::VARCHAR AS {column}")
    email = contract.subject_keys.get("email")
    email_sql = f"sha256(lower(NULLIF(trim({text[email]}), '')))" if email in text and email else "NULL"
    subjects.append(f"{email_sql}::VARCHAR AS subject_email_sha256")
    typed_out = "".join(f", {typed_name(i)}" for i in range(len(columns)))
    return (
        f"SELECT {payload} AS payload, {event_time} AS event_time, {', '.join(subjects)}, "
        f"{rejection_sql} AS rejection{typed_out} "
        f"FROM (SELECT *, {failed_sql} AS __insightloop_failed "
        f"FROM (SELECT *, {typed_sql} FROM {source} AS src) AS src) AS src"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
