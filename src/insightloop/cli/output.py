"""Writing query results as a table (rich), CSV or JSON.

CSV and JSON stream every row; the table shows at most ``max_rows`` and says how many more.
Values become plain text: times in ISO 8601, bytes as UTF-8 text (or ``base64:`` when not
text), decimals and UUIDs as strings.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import enum
import uuid
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, TextIO

import orjson
from rich.console import Console
from rich.table import Table


class OutputFormat(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def plain(value: Any) -> Any:
    """A value as JSON-ready data."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(data).decode("ascii")
    if isinstance(value, Decimal | uuid.UUID | dt.timedelta):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def text(value: Any) -> str:
    """A value as one cell of text ("" for NULL)."""
    data = plain(value)
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    return orjson.dumps(data).decode()


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([text(v) for v in row])
        count += 1
    return count


def write_json(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    """A JSON array of objects, one per line."""
    count = 0
    out.write("[")
    for row in rows:
        record = {name: plain(v) for name, v in zip(columns, row, strict=True)}
        out.write(("\n" if count == 0 else ",\n") + orjson.dumps(record).decode())
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_table(
    columns: Sequence[str], rows: Iterator[Sequence[Any]], console: Console, max_rows: int
) -> int:
    table = Table(*columns, show_lines=False, header_style="bold")
    shown = 0
    for row in rows:
        if shown < max_rows:
            table.add_row(*[_cell(v) for v in row])
        shown += 1
    console.print(table)
    note = f"{shown} row{'s' if shown != 1 else ''}"
    if shown > max_rows:
        note += f" ({shown - max_rows} not shown; use --max-rows or --format csv)"
    console.print(note, style="dim", highlight=False)
    return shown


def _cell(value: Any) -> str:
    return "NULL" if value is None else text(value)
