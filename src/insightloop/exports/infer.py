"""Proposing an export contract from a sample file, for a person to review and commit as
``contracts/export/<entity>/1-0-0.json`` (the export side of ``insightloop contracts infer``).

DuckDB's CSV sniffer (or the JSON reader, or the Parquet schema) types the first
``SAMPLE_ROWS`` rows: ``BIGINT``/``INTEGER`` → ``integer``, ``DOUBLE``/``DECIMAL`` →
``number``, ``BOOLEAN`` → ``boolean``, ``DATE`` → string ``date``, ``TIMESTAMP[ TZ]`` → string
``date-time``, anything else → ``string``. The proposal names as primary key the first column
called ``id`` or ending in ``_id`` whose sampled values are unique and never empty, as
updated-at the first timestamp column whose name says so (``updated_at``, ``modified`` …),
and as required the columns never empty in the sample; a column that looks like an e-mail
address becomes the ``email`` subject key. ``primary_key`` and ``updated_at`` given by the
caller replace the guesses (``InferError`` when the sample has no such column).
CSV lines that do not parse (a stray byte not in the file's encoding, a short row) are
left out of the sample rather than failing the proposal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from insightloop.contracts.registry import DRAFT, EXPORT_KEY, VENDOR
from insightloop.exports.landing import LandedFile
from insightloop.exports.reader import connect, duckdb_path
from insightloop.exports.sql import ident, lit

SAMPLE_ROWS = 10_000
_JSON_TYPE = {
    "BIGINT": ("integer", None),
    "INTEGER": ("integer", None),
    "SMALLINT": ("integer", None),
    "TINYINT": ("integer", None),
    "HUGEINT": ("integer", None),
    "DOUBLE": ("number", None),
    "FLOAT": ("number", None),
    "BOOLEAN": ("boolean", None),
    "DATE": ("string", "date"),
    "TIMESTAMP": ("string", "date-time"),
    "TIMESTAMP WITH TIME ZONE": ("string", "date-time"),
}


class InferError(ValueError):
    """The caller named a column the file does not have."""


_UPDATED = ("updated_at", "updated", "modified_at", "modified", "last_modified", "lastmodifieddate")


def propose(
    file: LandedFile,
    entity: str | None = None,
    primary_key: Sequence[str] | None = None,
    updated_at: str | None = None,
) -> dict[str, Any]:
    """A contract document for ``file``'s entity (default: the file's entity), with
    ``primary_key`` and ``updated_at`` when given, else guessed."""
    name = entity or file.entity
    connection = connect("512MB")
    try:
        sample = _sample(connection, file)
        columns = [(str(row[0]), str(row[1])) for row in connection.sql(f"DESCRIBE {sample}").fetchall()]
        stats = _stats(connection, sample, [column for column, _ in columns])
    finally:
        connection.close()
    properties: dict[str, Any] = {}
    for column, sql_type in columns:
        kind, fmt = _JSON_TYPE.get(sql_type.split("(")[0], ("string", None))
        spec: dict[str, Any] = {"type": kind if stats[column]["full"] else [kind, "null"]}
        if fmt is not None:
            spec["format"] = fmt
        properties[column] = spec
    required = [column for column, _ in columns if stats[column]["full"]]
    key = next(
        (
            c
            for c, _ in columns
            if (c == "id" or c.endswith("_id")) and stats[c]["unique"] and stats[c]["full"]
        ),
        columns[0][0] if columns else None,
    )
    updated = next((c for c, _ in columns if c.lower() in _UPDATED and properties[c].get("format")), None)
    keys = [key] if key else []
    if primary_key:
        keys = list(primary_key)
    if updated_at is not None:
        updated = updated_at
    unknown = [c for c in [*keys, *([updated] if updated else [])] if c not in properties]
    if unknown:
        raise InferError(
            f"{file.uri} has no column {', '.join(map(repr, unknown))} (it has {', '.join(properties)})"
        )
    extra: dict[str, Any] = {"primary_key": keys, "new_columns": "add"}
    if updated is not None:
        extra["updated_at"] = updated
    email = next((c for c, _ in columns if "email" in c.lower()), None)
    if email is not None:
        extra["subject_keys"] = {"email": email}
    return {
        "$schema": DRAFT,
        "self": {"vendor": VENDOR, "name": name, "format": "jsonschema", "version": "1-0-0"},
        "description": f"Export {name}: proposed from {file.uri}; review before committing.",
        "type": "object",
        EXPORT_KEY: extra,
        "properties": properties,
        "required": sorted(set(required) | set(keys)),
    }


def _sample(connection: duckdb.DuckDBPyConnection, file: LandedFile) -> str:
    path = lit(duckdb_path(connection, file))
    if file.format == "csv":
        source = f"read_csv({path}, header = true, sample_size = {SAMPLE_ROWS}, ignore_errors = true)"
    elif file.format == "jsonl":
        source = f"read_json({path}, format = 'newline_delimited', sample_size = {SAMPLE_ROWS})"
    else:
        source = f"read_parquet({path})"
    connection.execute(f"CREATE TEMP TABLE sample AS SELECT * FROM {source} LIMIT {SAMPLE_ROWS}")
    return "sample"


def _stats(
    connection: duckdb.DuckDBPyConnection, sample: str, columns: list[str]
) -> dict[str, dict[str, bool]]:
    parts = []
    for column in columns:
        value = ident(column)
        parts.append(f"count({value}) = count(*)")
        parts.append(f"count(DISTINCT {value}) = count(*)")
    (row,) = connection.sql(f"SELECT {', '.join(parts)} FROM {sample}").fetchall()
    return {
        column: {"full": bool(row[2 * i]), "unique": bool(row[2 * i + 1])} for i, column in enumerate(columns)
    }
