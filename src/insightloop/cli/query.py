"""``insightloop query``: one SQL statement against the warehouse views, pinned per table."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
from rich.console import Console

from insightloop.cli.output import OutputFormat, write_csv, write_json, write_table
from insightloop.config import Config
from insightloop.warehouse import open_warehouse, tables_in


class QueryError(Exception):
    """The SQL failed (syntax, unknown table or column, a runtime error): the user's to fix."""


def run_query(config: Config, sql: str, fmt: OutputFormat, max_rows: int = 1000) -> int:
    """Run ``sql`` and write its result to stdout; returns the number of rows."""
    # Pinning a table reads its manifests: only pin what the SQL mentions (all if it names none).
    with open_warehouse(config, tables_in(sql)) as warehouse:
        try:
            cursor = warehouse.con.execute(sql)
        except duckdb.CatalogException as exc:
            hint = 'the lake\'s tables: insightloop query "SHOW ALL TABLES"'
            raise QueryError(f"{exc}\n({hint})") from exc
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
        if cursor.description is None:
            return 0
        columns = [d[0] for d in cursor.description]
        rows = _rows(cursor)
        if fmt is OutputFormat.csv:
            return write_csv(columns, rows, sys.stdout)
        if fmt is OutputFormat.json:
            return write_json(columns, rows, sys.stdout)
        return write_table(columns, rows, Console(), max_rows)


def _rows(cursor: duckdb.DuckDBPyConnection, chunk: int = 2048) -> Iterator[Sequence[Any]]:
    while True:
        try:
            batch = cursor.fetchmany(chunk)
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
        if not batch:
            return
        yield from batch
