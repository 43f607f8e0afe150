"""A file's column names, read before its rows: the CSV header line (pyarrow's CSV reader,
first block only: DuckDB's dialect sniffer gives up on a file with a stray quote), the keys
of the first JSON objects (DuckDB, a sample), or the Parquet schema."""

from __future__ import annotations

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from insightloop.exports.contract import CsvOptions
from insightloop.exports.landing import LandedFile

_CODECS = {"utf-8": "utf8", "latin-1": "latin1", "utf-16": "utf-16"}
#: JSON lines: the objects whose keys make the header.
JSON_SAMPLE_ROWS = 10_000


def csv_header(file: LandedFile, options: CsvOptions) -> list[str]:
    with file.filesystem.open_input_stream(file.path, compression=file.compression) as stream:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                encoding=_CODECS.get(options.encoding, options.encoding),
                block_size=1 << 16,
                use_threads=False,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=options.delimiter,
                quote_char=options.quote or False,
                newlines_in_values=True,
                invalid_row_handler=lambda _row: "skip",
            ),
        )
        return list(reader.schema.names)


def json_header(connection: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    rows = connection.sql(
        f"SELECT DISTINCT unnest(json_keys(json)) AS k FROM "
        f"(SELECT json FROM {source} WHERE json_type(json) = 'OBJECT' LIMIT {JSON_SAMPLE_ROWS})"
    ).fetchall()
    return sorted(str(row[0]) for row in rows)


def parquet_header(file: LandedFile) -> list[str]:
    with file.filesystem.open_input_file(file.path) as handle:
        return list(pq.read_schema(handle).names)
