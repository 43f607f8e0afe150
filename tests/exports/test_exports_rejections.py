"""A file is loaded whole or not at all: a truncated gzip, a file over the bad-row limit and
a header missing a required column are rejected with the reason, and leave no rows; a file
within the limit loads its good rows and quarantines its bad ones, with file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from exports_kit import HEADER, Lake, counts, csv_text, landing_file, make_config, row

from insightloop.exports.status import files_status


def test_a_truncated_gzip_is_rejected_and_leaves_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path, batch_rows=1000)
    lake = Lake(config)
    whole = gzip.compress(csv_text(row(i) for i in range(20_000)).encode())
    path = landing_file(tmp_path, "contacts_2026-11-25.csv.gz", whole[: len(whole) * 2 // 3])
    outcome = lake.load(path)
    assert outcome.status == "rejected"
    assert outcome.reason is not None and "cannot be read" in outcome.reason
    assert lake.counts() == counts(0, 0, 0, 0)
    (status,) = files_status(config)
    assert (status.status, status.reason) == ("rejected", outcome.reason)
    data = tmp_path / "data" / "lake" / "warehouse" / "raw"
    assert not list(data.rglob("*.parquet"))  # the uncommitted data files were deleted

    path.write_bytes(whole)  # the upload completed: the same name, whole now
    assert lake.load(path).status == "loaded"
    assert lake.counts() == counts(20_000, 0, 20_000, 0)


def test_a_file_over_the_bad_row_limit_is_rejected(tmp_path: Path) -> None:
    config = make_config(tmp_path, max_bad_rows=2, max_bad_fraction=1.0)
    lake = Lake(config)
    rows = [row(i) for i in range(1, 98)] + [row(f"x{i}", score="many") for i in range(3)]
    outcome = lake.load(landing_file(tmp_path, "contacts_2026-11-24.csv", csv_text(rows)))
    assert outcome.status == "rejected"
    assert outcome.reason is not None and "3 bad rows" in outcome.reason
    assert lake.counts() == counts(0, 0, 0, 0)

    within = [row(i) for i in range(1, 99)] + [row(f"x{i}", score="many") for i in range(2)]
    assert lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(within))).status == "loaded"
    assert lake.counts() == counts(98, 2, 98, 2)
    bad = sorted(lake.rows("quarantine.export_rows"), key=lambda r: r["row"])
    assert [(r["row"], r["kind"], r["column_name"]) for r in bad] == [
        (99, "wrong_type", "score"),
        (100, "wrong_type", "score"),
    ]
    assert all(r["file"].endswith("contacts_2026-11-25.csv") and r["period"] == "2026-11-25" for r in bad)
    assert json.loads(bad[0]["payload"])["score"] == "many"


def test_the_bad_row_fraction(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path, max_bad_rows=1000, max_bad_fraction=0.1))
    rows = [row(i) for i in range(8)] + [row(f"x{i}", amount="n/a") for i in range(2)]  # 20 %
    outcome = lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(rows)))
    assert outcome.status == "rejected" and outcome.reason is not None and "20.0%" in outcome.reason
    assert lake.counts() == counts(0, 0, 0, 0)


def test_bad_rows_of_every_kind_go_to_quarantine(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path, max_bad_fraction=1.0))
    text = csv_text([row(1), row(2, updated_at=None), row(3, signup="2026-13-45"), row(4)])
    text += "5,short\n6,a@b.c,1,1.0,2026-01-01,2026-11-25T10:00:00Z,one too many\n"
    lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", text))
    assert lake.counts() == counts(2, 4, 2, 4)
    bad = {r["row"]: (r["kind"], r["column_name"], r["line"]) for r in lake.rows("quarantine.export_rows")}
    assert bad == {
        2: ("missing_field", "updated_at", 3),  # record numbers: the header is 1
        3: ("wrong_type", "signup", 4),
        5: ("wrong_column_count", None, 6),
        6: ("wrong_column_count", None, 7),
    }


def test_a_missing_required_column_rejects_the_file(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    header = [name for name in HEADER if name != "updated_at"]
    outcome = lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(1)], header)))
    assert outcome.status == "rejected"
    assert (
        outcome.reason is not None
        and "required column(s) missing from the header: updated_at" in outcome.reason
    )
    assert lake.counts() == counts(0, 0, 0, 0)


def test_a_file_without_a_contract_is_rejected(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    path = tmp_path / "in" / "hubspot" / "deals" / "deals.csv"
    path.parent.mkdir(parents=True)
    path.write_text(csv_text([row(1)]))
    from insightloop.exports.landing import local_files

    (file,) = local_files(path, None, None)
    outcome = lake.loader.load(file)
    assert (
        outcome.status == "rejected"
        and outcome.reason is not None
        and "no contract export/deals" in outcome.reason
    )
