"""The batch-export part of the demo: its drops, and a summary that shows a mismatch as one."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from insightloop.cli.demo_view import render_export_summary
from insightloop.config import Config
from insightloop.demo.exports import (
    CLEANED_TABLE,
    POLL_ENV,
    QUARANTINE_TABLE,
    RAW_TABLE,
    Drop,
    ExportRun,
    ExportSide,
    ExportSummary,
    pending,
    plan_drops,
    resent_name,
    summarize_exports,
)
from insightloop.exports.generate import DayWritten
from insightloop.exports.status import LOADED, LOADING, REJECTED, UNCHANGED, FileStatus


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(data_dir=str(tmp_path / "data"))


def day(name: str, rows: int, bad: int, keys: set[str]) -> DayWritten:
    return DayWritten(Path("/staging") / name, name[9:19], rows=rows, bad=bad, keys=keys)


def drops() -> list[Drop]:
    one = day("contacts_2026-11-23.csv", 10, 1, {"a", "b", "c"})
    two = day("contacts_2026-11-24.csv", 5, 2, {"b", "d"})
    folder = Path("/landing/hubspot/contacts")
    return [
        Drop(one.path, folder / one.path.name, 1.0, one, dropped=True),
        Drop(two.path, folder / two.path.name, 2.0, two, dropped=True),
        Drop(one.path, folder / resent_name(one.path.name), 3.0, one, expect=UNCHANGED, dropped=True),
    ]


def status(name: str, state: str, rows: int = 0, bad: int = 0, reason: str | None = None) -> FileStatus:
    uri = f"/landing/hubspot/contacts/{name}"
    return FileStatus(uri, "hubspot", "contacts", state, "now", rows=rows, bad_rows=bad, reason=reason)


def good_statuses() -> list[FileStatus]:
    return [
        status("contacts_2026-11-23.csv", LOADED, 9, 1),
        status("contacts_2026-11-24.csv", LOADED, 3, 2),
        status("contacts_2026-11-23_resent.csv", UNCHANGED, 9, 1, reason="already loaded as raw sequence 1"),
    ]


def render(summary: ExportSummary) -> str:
    console = Console(record=True, width=220)
    render_export_summary(console, summary)
    return console.export_text()


def test_totals_are_the_loaded_files_rows_bad_rows_and_distinct_good_keys() -> None:
    counts: dict[str, int | None] = {RAW_TABLE: 15, QUARANTINE_TABLE: 3, CLEANED_TABLE: 4}
    summary = summarize_exports(drops(), good_statuses(), counts)
    assert [(c.expected, c.ok) for c in summary.checks] == [(15, True), (3, True), (4, True)]
    assert summary.ok and not summary.pending
    text = render(summary)
    assert "raw.export_rows         15 rows = rows of the 2 loaded file(s) (15) ✓" in text
    assert "quarantine.export_rows  3 rows = their bad rows (3) ✓" in text
    assert "cleaned.crm_contacts    4 rows = distinct keys of their good rows (4) ✓" in text
    assert "every dropped file has a final status ✓" in text
    assert "unchanged (already loaded as raw sequence 1)" in text
    assert "✗" not in text


def test_a_count_that_differs_or_a_missing_table_shows_a_cross() -> None:
    summary = summarize_exports(drops(), good_statuses(), {RAW_TABLE: 15, QUARANTINE_TABLE: 2})
    assert [c.ok for c in summary.checks] == [True, False, False]
    text = render(summary)
    assert "quarantine.export_rows  2 rows = their bad rows (3) ✗" in text
    assert "cleaned.crm_contacts    missing = distinct keys of their good rows (4) ✗" in text


def test_a_rejected_file_counts_for_nothing_and_is_not_what_was_expected() -> None:
    statuses = good_statuses()
    statuses[1] = status("contacts_2026-11-24.csv", REJECTED, reason="3 bad rows of 5: over the limit")
    summary = summarize_exports(drops(), statuses, {RAW_TABLE: 10, QUARANTINE_TABLE: 1, CLEANED_TABLE: 3})
    assert all(c.ok for c in summary.checks)
    assert [line.ok for line in summary.files] == [True, False, True]
    assert (summary.files[1].rows, summary.files[1].expected_rows) == (0, 3)
    assert not summary.ok
    text = render(summary)
    assert "rejected (3 bad rows of 5: over the limit)" in text
    assert "rows of the 1 loaded file(s) (10) ✓" in text


def test_files_still_loading_or_never_seen_are_pending() -> None:
    statuses = [status("contacts_2026-11-23.csv", LOADED, 9, 1), status("contacts_2026-11-24.csv", LOADING)]
    assert pending(drops(), statuses) == ["contacts_2026-11-24.csv", "contacts_2026-11-23_resent.csv"]
    summary = summarize_exports(drops(), statuses, {RAW_TABLE: 10, QUARANTINE_TABLE: 1, CLEANED_TABLE: 3})
    assert not summary.ok
    assert "no final status when the demo stopped waiting: contacts_2026-11-24.csv" in render(summary)


def test_files_not_dropped_yet_are_not_waited_for() -> None:
    planned = drops()
    planned[2].dropped = False
    assert pending(planned, good_statuses()[:2]) == []
    assert [line.name for line in summarize_exports(planned, good_statuses(), {}).files] == [
        "contacts_2026-11-23.csv",
        "contacts_2026-11-24.csv",
    ]


def test_the_drops_land_whole_at_their_times(tmp_path: Path) -> None:
    planned = plan_drops(tmp_path / "staging", tmp_path / "landing", 10.0, seed=7)
    names = [d.name for d in planned]
    assert names == [
        "contacts_2026-11-23.csv",
        "contacts_2026-11-24.csv",
        "contacts_2026-11-25.csv.gz",
        "contacts_2026-11-23_resent.csv",
    ]
    assert [d.expect for d in planned] == [LOADED, LOADED, LOADED, UNCHANGED]
    assert planned[3].staged.read_bytes() == planned[0].staged.read_bytes()
    assert sum(d.day.bad for d in planned[:3]) > 0, "the files hold bad rows"
    assert len(planned[0].day.keys & planned[1].day.keys) > 0, "keys repeat across days"
    run = ExportRun(planned)
    run.drop_due(3.5)
    folder = tmp_path / "landing" / "hubspot" / "contacts"
    assert sorted(p.name for p in folder.iterdir()) == ["contacts_2026-11-23.csv", "contacts_2026-11-24.csv"]
    run.drop_all()
    assert len(list(folder.iterdir())) == 4
    assert all(d.dropped for d in planned)
    assert b"region" in (folder / "contacts_2026-11-24.csv").read_bytes().splitlines()[0]


def test_the_loader_polls_every_second_unless_told(config: Config) -> None:
    side = ExportSide(config, 10.0, 7)
    assert side.env({"A": "1"}) == {"A": "1", POLL_ENV: "1.0"}
    assert side.env({POLL_ENV: "3"})[POLL_ENV] == "3"
    assert side.poll_seconds == "3"


def test_without_exports_the_demo_drops_nothing_and_says_so(config: Config) -> None:
    off = msgspec.structs.replace(config, exports=msgspec.structs.replace(config.exports, enabled=False))
    side = ExportSide(off, 10.0, 7)
    side.prepare()
    assert side.run is None and side.done()
    assert side.env({"A": "1"}) == {"A": "1"}
    assert "Batch exports: off (exports.enabled = false)" in render(side.summary())
    assert not Path(off.data_dir, "demo-exports").exists()
