"""Stage 1 stages each file's typed rows for stage 2; cleaned must be the same whether stage 2
merges those or derives the rows from raw (after a crash between the stages and a lost state
directory), for every format; and staged rows never outlive their use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from exports_kit import ENTITY, HEADER, Lake, contract, counts, csv_text, landing_file, make_config, row

from insightloop.exports import apply, cleaned, staging
from insightloop.exports.apply import ExportStage
from insightloop.exports.status import state_directory


class Crash(Exception):
    pass


def _tricky_rows() -> list[dict[str, Any]]:
    return [
        row(1, score=" 7 ", amount="1.50", email="Ann@Example.com"),
        row(2, score="", amount="", email=""),  # empty values: nulls for typed columns
        row(3, email='quote " and, comma', signup=" 2026-02-03 "),
        row(4, email="line\nbreak", amount="-0.0"),
        row(5, email="Zoë Ñandú ✓", score="9223372036854775807"),
        row(1, hour=11, score="8"),  # the key again, later: wins
        row(6, updated_at="2026-11-25 10:00:00+02:00"),
    ]


def _write_files(tmp_path: Path) -> list[Path]:
    rows = _tricky_rows()
    csv = landing_file(tmp_path, "contacts_2026-11-24.csv", csv_text(rows))
    lines = [
        {
            "id": "7",
            "email": None,
            "score": 12,
            "amount": 1.5,
            "signup": "2026-01-02",
            "updated_at": "2026-11-25T10:00:00Z",
        },
        {
            "id": "8",
            "email": "x@y.z",
            "score": "13",
            "amount": 2,
            "updated_at": "2026-11-25T10:00:00Z",
            "extra": {"a": [1, 2]},
        },
        {
            "id": "9",
            "email": "ü",
            "score": None,
            "amount": "3.25",
            "signup": "",
            "updated_at": "2026-11-25T12:00:00Z",
        },
    ]
    jsonl = landing_file(
        tmp_path, "contacts_2026-11-25.jsonl", "\n".join(json.dumps(v) for v in lines) + "\n"
    )
    table = pa.Table.from_pylist(
        [
            {
                "id": "10",
                "email": "p@q.r",
                "score": 5,
                "amount": 0.1,
                "signup": "2026-03-04",
                "updated_at": "2026-11-26T01:00:00Z",
            },
            {
                "id": "2",
                "email": "later@x.y",
                "score": None,
                "amount": 7.0,
                "signup": None,
                "updated_at": "2026-11-26T02:00:00Z",
            },
        ]
    )
    parquet = tmp_path / "in" / "hubspot" / ENTITY / "contacts_2026-11-26.parquet"
    pq.write_table(table, parquet)
    return [csv, jsonl, parquet]


def _cleaned(lake: Lake) -> dict[str, dict[str, Any]]:
    return {
        key: {k: v for k, v in values.items() if k != "_loaded_at"} for key, values in lake.cleaned().items()
    }


def test_cleaned_is_the_same_from_staged_rows_and_from_raw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _write_files(tmp_path)

    staged_lake = Lake(make_config(tmp_path / "a"))
    used = []
    real_staged = staging.staged

    def spy(state_dir: Path, sha256: str) -> staging.Staged | None:
        found = real_staged(state_dir, sha256)
        used.append(found is not None)
        return found

    with monkeypatch.context() as patch:
        patch.setattr(apply.staging, "staged", spy)
        assert [staged_lake.load(path).status for path in paths] == ["loaded"] * 3
    assert used == [True, True, True]  # stage 2 merged each file's staged rows

    config = make_config(tmp_path / "b")
    from_raw = Lake(config)
    from_raw.loader.catch_up()

    def crash(self: ExportStage) -> list[apply.Applied]:
        raise Crash("between the stages")

    for path in paths:
        with monkeypatch.context() as patch:
            patch.setattr(ExportStage, "apply_pending", crash)
            with pytest.raises(Crash):
                from_raw.load(path)
        # The state directory's staged rows are lost: stage 2 must derive them from raw.
        shutil.rmtree(state_directory(config) / staging.STAGING)
        from_raw = Lake(config)
        from_raw.loader.catch_up()

    assert staged_lake.counts() == from_raw.counts() == counts(12, 0, 10, 0)
    assert _cleaned(staged_lake) == _cleaned(from_raw)
    one = staged_lake.cleaned()
    assert one["1"]["score"] == 8 and one["2"]["email"] == "later@x.y" and one["5"]["email"] == "Zoë Ñandú ✓"
    assert one["3"]["email"] == 'quote " and, comma' and one["4"]["email"] == "line\nbreak"
    assert one["7"]["amount"] == 1.5 and one["8"]["score"] == 13 and one["9"]["score"] is None
    received = set(staged_lake.column("raw.export_rows", "received_at"))
    assert {values["_loaded_at"] for values in one.values()} <= received


def test_staged_rows_are_deleted_once_applied_and_stale_ones_at_start(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)
    root = state_directory(config) / staging.STAGING
    stale = root / ("f" * 64)  # as a load killed before its raw commit leaves them
    stale.mkdir(parents=True)
    (stale / "part-00000.parquet").write_bytes(b"half a file")

    assert (
        lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(1), row(2)]))).status
        == "loaded"
    )
    assert lake.counts() == counts(2, 0, 2, 0)
    assert list(root.iterdir()) == []


def test_a_column_typed_otherwise_in_the_table_takes_the_tables_type(tmp_path: Path) -> None:
    as_text = contract()
    as_text["properties"]["score"] = {"type": ["string", "null"]}
    config = make_config(tmp_path, as_text)
    Lake(config).load(landing_file(tmp_path, "contacts_2026-11-24.csv", csv_text([row(1, score="01")])))

    # A later contract makes score an integer; the table keeps its string column.
    make_config(tmp_path, contract())
    lake = Lake(config)
    outcome = lake.load(
        landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(2, score=" 02 ")], HEADER))
    )
    assert outcome.status == "loaded"
    cleaned = lake.cleaned()
    assert (cleaned["1"]["score"], cleaned["2"]["score"]) == ("01", " 02 ")


def test_cleaned_files_of_a_crashed_merge_are_deleted_when_it_is_done_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)
    lake.loader.catch_up()

    def crash(*args: object) -> list[object]:
        raise Crash("after the merge wrote its files, before its commit")

    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(1), row(2), row(1, hour=12)]))
    with monkeypatch.context() as patch:
        patch.setattr(cleaned, "_parquet_files_to_data_files", crash)
        with pytest.raises(Crash):
            lake.load(path)
    folder = Path(tmp_path / "data" / "lake" / "warehouse" / "cleaned" / f"crm_{ENTITY}")
    assert list(folder.rglob("*.parquet")), "the crashed merge wrote no file: nothing to clean up"

    restarted = Lake(config)
    assert restarted.load(path).status == "unchanged"
    assert restarted.counts() == counts(3, 0, 2, 0)
    table = restarted.catalog.load_table(f"cleaned.crm_{ENTITY}")
    referenced = {task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()}
    assert {str(p) for p in folder.rglob("*.parquet")} == referenced
