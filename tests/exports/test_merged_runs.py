"""Files loaded together (the parts of a day, a folder, what one look at the landing zone
found) are merged into cleaned in one rewrite of the table: the same rows as one merge per
file, one commit, a correction still alone, a crash mid-run finished once on restart."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from exports_kit import ENTITY, Lake, counts, csv_text, files, landing_file, make_config, row
from typer.testing import CliRunner

from insightloop.cli.main import app
from insightloop.config import Config
from insightloop.exports.apply import runs
from insightloop.exports.loader import LoadOutcome
from insightloop.exports.metrics import ExportMetrics
from insightloop.exports.raw_load import FileRecord
from insightloop.exports.service import LoaderService
from insightloop.exports.status import files_status

CLEANED = f"cleaned.crm_{ENTITY}"
#: Cleaned columns that differ between two lakes loading the same files (when, in which raw
#: sequence and row of raw).
VOLATILE = ("_loaded_at",)


class Crash(Exception):
    pass


def record(seq: int, entity: str = "contacts", replaces: str | None = None) -> FileRecord:
    return FileRecord(
        f"s{seq}", f"u{seq}", "hubspot", entity, "2026-11-25", "c", seq, 1, 0, 1, "now", replaces
    )


def test_runs_are_consecutive_files_of_one_entity_and_a_correction_alone() -> None:
    records = [
        record(1),
        record(2),
        record(3, "companies"),
        record(4),
        record(5, replaces="s4"),
        record(6),
        record(7),
    ]
    assert [[r.seq for r in run] for run in runs(records)] == [[1, 2], [3], [4], [5], [6, 7]]
    assert runs([]) == []


def days() -> list[tuple[str, str]]:
    """Four files: keys overlapping across days, a bad row, a column only day 3 has, day 2
    corrected (it drops key 4 and changes key 3)."""
    header = ["id", "email", "score", "amount", "signup", "updated_at"]
    one = [row(i, "2026-11-23", score=10 + i) for i in range(1, 6)]
    two = [row(i, "2026-11-24", score=20 + i) for i in range(3, 8)] + [row(9, "2026-11-24", score="bad")]
    three = [{**row(i, "2026-11-25", score=30 + i), "region": "eu"} for i in (1, 7, 8)]
    fixed = [row(3, "2026-11-24", score=43), *(row(i, "2026-11-24", score=20 + i) for i in range(5, 8))]
    return [
        ("contacts_2026-11-23.csv", csv_text(one)),
        ("contacts_2026-11-24.csv", csv_text(two)),
        ("contacts_2026-11-25.csv", csv_text(three, [*header, "region"])),
        ("contacts_2026-11-24_v2.csv", csv_text(fixed)),
    ]


def cleaned_rows(lake: Lake) -> dict[str, dict[str, Any]]:
    return {key: {k: v for k, v in r.items() if k not in VOLATILE} for key, r in lake.cleaned().items()}


def one_by_one(tmp_path: Path) -> Lake:
    lake = Lake(make_config(tmp_path / "one-by-one"))
    for name, text in days():
        assert lake.load(landing_file(tmp_path / "one-by-one", name, text)).status == "loaded"
    return lake


def test_files_loaded_together_give_the_rows_of_one_merge_each_in_fewer_commits(tmp_path: Path) -> None:
    expected = one_by_one(tmp_path)
    lake = Lake(make_config(tmp_path))
    paths = [landing_file(tmp_path, name, text) for name, text in days()]
    committed = [lake.loader.commit(file) for path in paths for file in files(path)]
    assert [o.status for o in committed] == ["loaded"] * 4
    assert lake.counts() == counts(17, 1, 0, 0)  # raw only, so far

    done = lake.loader.finish(committed)
    assert [o.status for o in done] == ["loaded"] * 4
    assert all(after.seconds >= before.seconds for before, after in zip(committed, done, strict=True))
    # 5 + 6 + 3 + 4 raw rows (day 2's first version kept); its bad row left quarantine with
    # it; keys 1-8 (the correction left out key 4: day 1's version is back).
    assert lake.counts() == counts(17, 1, 8, 0) == expected.counts()
    assert cleaned_rows(lake) == cleaned_rows(expected)
    assert cleaned_rows(lake)["4"]["score"] == 14 and cleaned_rows(lake)["3"]["score"] == 43
    # Days 1-3 in one commit, the correction in its own: two, against four one by one.
    table = lake.catalog.load_table(CLEANED)
    assert len(table.metadata.snapshots) == 2
    assert len(expected.catalog.load_table(CLEANED).metadata.snapshots) == 4
    statuses = {s.uri.rsplit("/", 1)[-1]: s for s in files_status(lake.config)}
    assert {name: s.status for name, s in statuses.items()} == dict.fromkeys(statuses, "loaded")


@pytest.mark.parametrize("crash_at", ["quarantine.export_rows", CLEANED])
def test_a_crash_in_a_runs_merge_is_finished_once_on_restart(tmp_path: Path, crash_at: str) -> None:
    expected = one_by_one(tmp_path)
    config = make_config(tmp_path)
    lake = Lake(config)
    paths = [landing_file(tmp_path, name, text) for name, text in days()[:3]]

    def crash(table: str) -> None:
        if table == crash_at:
            raise Crash(table)

    lake.loader.stage.after_table = crash
    committed = [lake.loader.commit(file) for path in paths for file in files(path)]
    with pytest.raises(Crash):
        lake.loader.finish(committed)
    held = 0 if crash_at != CLEANED else 8
    assert lake.counts()["cleaned"] == held  # the run's merge is all or nothing

    statuses = {s.uri.rsplit("/", 1)[-1]: s.status for s in files_status(config)}
    assert set(statuses.values()) == {"loading"}  # in raw, not merged: not loaded yet
    restarted = Lake(config)
    restarted.loader.catch_up()
    # The restart merged them: loaded, with their rows (not "unchanged" at their next look).
    finished = {s.uri.rsplit("/", 1)[-1]: (s.status, s.rows) for s in files_status(config)}
    assert finished == {
        "contacts_2026-11-23.csv": ("loaded", 5),
        "contacts_2026-11-24.csv": ("loaded", 5),
        "contacts_2026-11-25.csv": ("loaded", 3),
    }
    correction = restarted.load(landing_file(tmp_path, *days()[3]))
    assert correction.status == "loaded" and correction.record is not None and correction.record.replaces
    assert restarted.counts() == expected.counts()
    assert cleaned_rows(restarted) == cleaned_rows(expected)
    assert len(restarted.catalog.load_table(CLEANED).metadata.snapshots) == 2


def test_a_folder_given_to_load_is_merged_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(tmp_path)
    folder = tmp_path / "in" / "hubspot" / ENTITY
    for i, name in enumerate(("contacts_2026-11-25_part-001.csv", "contacts_2026-11-25_part-002.csv")):
        landing_file(tmp_path, name, csv_text(row(k) for k in range(10 * i, 10 * i + 10)))
    monkeypatch.setenv("INSIGHTLOOP_DATA_DIR", config.data_dir)
    monkeypatch.setenv("INSIGHTLOOP__CONTRACTS__DIR", str(config.contracts.dir))
    result = CliRunner().invoke(app, ["load", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.output.count("loaded ") == 2, result.output
    lake = Lake(config)
    assert lake.counts() == counts(20, 0, 20, 0)
    assert len(lake.catalog.load_table(CLEANED).metadata.snapshots) == 1


def serve_once(config: Config, paths: list[Path]) -> list[LoadOutcome]:
    """One look of the file loader's service at a landing zone holding ``paths``."""
    service = LoaderService(config, Lake(config).catalog, ExportMetrics())
    seen: list[LoadOutcome] = []
    finish = service.loader.finish

    def recorded(outcomes: Any) -> list[LoadOutcome]:
        done = finish(outcomes)
        seen.extend(done)
        return done

    service.loader.finish = recorded  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 120
    while len([o for o in seen if o.status == "loaded"]) < len(paths) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(60)
    return seen


@pytest.mark.parametrize(("merge_after_mb", "commits"), [(8192, 1), (0, 3)])
def test_the_loader_merges_what_one_look_found_or_every_merge_after_mb(
    tmp_path: Path, merge_after_mb: int, commits: int
) -> None:
    config = make_config(
        tmp_path, landing=str(tmp_path / "in"), poll_seconds=0.05, merge_after_mb=merge_after_mb
    )
    paths = [
        landing_file(
            tmp_path, f"contacts_2026-11-2{d}.csv", csv_text(row(k, f"2026-11-2{d}") for k in range(d, d + 5))
        )
        for d in (3, 4, 5)
    ]
    seen = serve_once(config, paths)
    assert sorted(o.file.name for o in seen if o.status == "loaded") == sorted(p.name for p in paths)
    lake = Lake(config)
    assert lake.counts() == counts(15, 0, 7, 0)  # keys 3-9
    assert len(lake.catalog.load_table(CLEANED).metadata.snapshots) == commits
