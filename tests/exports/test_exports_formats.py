"""JSON lines and Parquet files, gzip and zstd compressed, load like CSV: the same raw rows
(payload: the row's fields), the same typing and quarantine."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from exports_kit import Lake, counts, csv_text, landing_file, make_config, row


def test_json_lines_gzip(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path, max_bad_fraction=1.0))
    lines = [
        json.dumps(row(1)),
        json.dumps({**row(2), "score": 7}),
        "{not json",
        json.dumps(row(3, score="x")),
    ]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    assert lake.load(landing_file(tmp_path, "contacts_2026-11-25.jsonl.gz", data)).status == "loaded"
    assert lake.counts() == counts(2, 2, 2, 2)
    assert lake.cleaned()["2"]["score"] == 7
    kinds = sorted(r["kind"] for r in lake.rows("quarantine.export_rows"))
    assert kinds == ["malformed_json", "wrong_type"]


def test_parquet(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    table = pa.Table.from_pylist([row(1), row(2), row(3)])
    path = landing_file(tmp_path, "contacts_2026-11-25.parquet", b"")
    pq.write_table(table, path)
    assert lake.load(path).status == "loaded"
    assert lake.counts() == counts(3, 0, 3, 0)
    assert lake.cleaned()["3"]["amount"] == 12.5


def test_zstd_csv(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    data = zstandard.ZstdCompressor().compress(csv_text(row(i) for i in range(1, 1001)).encode())
    assert lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv.zst", data)).status == "loaded"
    assert lake.counts() == counts(1000, 0, 1000, 0)
