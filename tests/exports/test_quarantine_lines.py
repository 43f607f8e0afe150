"""Every quarantined row names its record in the file (``line``, the header being 1): rows the
CSV parser refused as the parser counted them, rows that parsed but failed a check after the
header and the refused records before them (a quoted field's newline counts once), a JSON
line by its place in the file; a Parquet row has none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from exports_kit import HEADER, Lake, csv_text, landing_file, make_config, row

GOOD = "a@b.c,1,1.0,2026-01-01,2026-11-25T10:00:00Z"


def key_of(payload: bytes) -> str:
    """The id of a quarantined row: a parsed row's payload is its fields as JSON, a refused
    row's is its text."""
    try:
        return str(json.loads(payload)["id"])
    except (ValueError, KeyError, TypeError):
        return payload.decode("latin-1").split(",", 1)[0]


def quarantined(lake: Lake) -> dict[str, tuple[str, Any]]:
    """Quarantined rows by id: (kind, line)."""
    return {key_of(r["payload"]): (r["kind"], r["line"]) for r in lake.rows("quarantine.export_rows")}


def test_csv_rows_are_numbered_by_their_record_in_the_file(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path, max_bad_fraction=1.0))
    records = [
        ",".join(HEADER),  # record 1, line 1
        f"1,{GOOD}",  # 2
        "2,a@b.c,1,1.0,2026-13-45,2026-11-25T10:00:00Z",  # 3: not a date
        "3,short",  # 4: too few columns
        '4,"two\nlines@b.c",1,1.0,2026-01-01,2026-11-25T10:00:00Z',  # 5: lines 5 and 6
        "5,a@b.c,1,1.0,2026-01-01,yesterday",  # 6 (line 7): not a timestamp
        f"6,{GOOD},one too many",  # 7 (line 8)
        "7,a@b.c,1,1.0,2026-01-01,",  # 8 (line 9): required value missing
        "8,a@b.c,1,1.0",  # 9 (line 10): too few columns
        "9,a@b.c",  # 10 (line 11): too few columns
        "10,a@b.c,many,1.0,2026-01-01,2026-11-25T10:00:00Z",  # 11 (line 12): not an integer
        f"11,{GOOD}",  # 12
        "12,a@b.c,1,1.0,11/25/2026,2026-11-25T10:00:00Z",  # 13 (line 14): not a date
    ]
    text = "\n".join(records) + "\n"
    assert lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", text)).status == "loaded"
    assert quarantined(lake) == {
        "2": ("wrong_type", 3),
        "3": ("wrong_column_count", 4),
        "5": ("wrong_type", 6),
        "6": ("wrong_column_count", 7),
        "7": ("missing_field", 8),
        "8": ("wrong_column_count", 9),
        "9": ("wrong_column_count", 10),
        "10": ("wrong_type", 11),
        "12": ("wrong_type", 13),
    }
    lines = text.split("\n")
    assert lines[2].startswith("2,") and lines[13].startswith("12,")  # record 3 on line 3; 13 on 14
    assert sorted(lake.cleaned()) == ["1", "11", "4"]


def test_records_are_counted_across_batches_of_a_large_gzip_csv(tmp_path: Path) -> None:
    """Many batches, bad rows and refused records throughout: each quarantined row's number
    is the one counted while writing the file."""
    lake = Lake(make_config(tmp_path, max_bad_rows=1000, max_bad_fraction=1.0, batch_rows=64))
    lines = [",".join(HEADER)]
    expected: dict[str, tuple[str, int]] = {}
    for i in range(1, 2001):
        record = len(lines) + 1
        if i % 97 == 0:
            lines.append(f"{i},short")
            expected[str(i)] = ("wrong_column_count", record)
        elif i % 41 == 0:
            lines.append(csv_text([row(i, signup="not a date")]).split("\n")[1])
            expected[str(i)] = ("wrong_type", record)
        elif i % 13 == 0:
            lines.append(csv_text([row(i, email=f"two\nlines{i}@b.c")]).split("\n", 1)[1].rstrip("\n"))
        else:
            lines.append(csv_text([row(i)]).split("\n")[1])
    text = "\n".join(lines) + "\n"
    path = landing_file(tmp_path, "contacts_2026-11-25.csv.gz", text, compress=True)
    assert lake.load(path).status == "loaded"
    assert quarantined(lake) == expected
    assert any(kind == "wrong_type" and line > 100 for kind, line in expected.values())


def test_a_json_line_is_numbered_by_its_line(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path, max_bad_fraction=1.0))
    lines = [
        json.dumps(row(1)),
        json.dumps(row(2)),
        json.dumps(row(3, score="three")),  # line 3: not an integer
        json.dumps(row(4)),
        json.dumps(row(5, updated_at=None)),  # line 5: required value missing
    ]
    text = "\n".join(lines) + "\n"
    assert lake.load(landing_file(tmp_path, "contacts_2026-11-25.jsonl", text)).status == "loaded"
    assert quarantined(lake) == {"3": ("wrong_type", 3), "5": ("missing_field", 5)}


def test_a_parquet_row_has_no_line(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path, max_bad_fraction=1.0))
    path = landing_file(tmp_path, "contacts_2026-11-25.parquet", b"")
    pq.write_table(pa.Table.from_pylist([row(1), row(2, score="two")]), path)
    assert lake.load(path).status == "loaded"
    assert quarantined(lake) == {"2": ("wrong_type", None)}
