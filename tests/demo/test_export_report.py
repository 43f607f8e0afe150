"""The batch-export part of the demo: its drops, and a summary that shows a mismatch as one
(a corrected file's too: what it replaced, and its checks in raw and cleaned)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from insightloop.cli.demo_view import render_export_summary
from insightloop.config import Config
from insightloop.demo.export_checks import ExportSummary, lake_counts, replacing, summarize_exports
from insightloop.demo.export_drops import (
    CLEANED_TABLE,
    QUARANTINE_TABLE,
    RAW_TABLE,
    Drop,
    ExportRun,
    pending,
    plan_drops,
    resent_name,
)
from insightloop.demo.exports import POLL_ENV, ExportSide
from insightloop.exports.generate import CORRECTED_DOMAIN, Correction, DayWritten
from insightloop.exports.raw_load import FileRecord
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


def status(
    name: str,
    state: str,
    rows: int = 0,
    bad: int = 0,
    reason: str | None = None,
    sha: str | None = None,
    seq: int | None = None,
) -> FileStatus:
    uri = f"/landing/hubspot/contacts/{name}"
    return FileStatus(
        uri, "hubspot", "contacts", state, "now", rows=rows, bad_rows=bad, reason=reason, sha256=sha, seq=seq
    )


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
    assert "quarantine.export_rows  3 rows = bad rows of each period's latest file (3) ✓" in text
    assert (
        "cleaned.crm_contacts    4 rows = distinct keys of the good rows of each period's latest file (4) ✓"
        in text
    )
    assert "every dropped file has a final status ✓" in text
    assert "unchanged (already loaded as raw sequence 1)" in text
    assert "✗" not in text


def test_a_count_that_differs_or_a_missing_table_shows_a_cross() -> None:
    summary = summarize_exports(drops(), good_statuses(), {RAW_TABLE: 15, QUARANTINE_TABLE: 2})
    assert [c.ok for c in summary.checks] == [True, False, False]
    text = render(summary)
    assert "quarantine.export_rows  2 rows = bad rows of each period's latest file (3) ✗" in text
    assert (
        "cleaned.crm_contacts    missing = distinct keys of the good rows of each period's latest file (4) ✗"
        in text
    )


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
        "contacts_2026-11-24.csv",
    ]
    assert [d.expect for d in planned] == [LOADED, LOADED, LOADED, UNCHANGED, LOADED]
    assert planned[3].staged.read_bytes() == planned[0].staged.read_bytes()
    assert sum(d.day.bad for d in planned[:3]) > 0, "the files hold bad rows"
    assert len(planned[0].day.keys & planned[1].day.keys) > 0, "keys repeat across days"
    correction = planned[4].correction
    assert correction is not None and correction.replaces is planned[1].day
    assert planned[4].day.sha256 != planned[1].day.sha256
    assert (planned[4].day.rows, planned[4].day.bad) == (
        planned[1].day.rows - len(correction.removed),
        planned[1].day.bad - len(correction.fixed),
    )
    run = ExportRun(planned)
    run.drop_due(3.5)
    folder = tmp_path / "landing" / "hubspot" / "contacts"
    assert sorted(p.name for p in folder.iterdir()) == ["contacts_2026-11-23.csv", "contacts_2026-11-24.csv"]
    run.drop_all()  # the correction waits for the loader's final status of the first version
    assert len(list(folder.iterdir())) == 4
    assert [d.dropped for d in planned] == [True, True, True, True, False]
    first = status("contacts_2026-11-24.csv", LOADED, 621, 4, sha=planned[1].day.sha256)
    run.drop_all(lambda: [first])
    assert all(d.dropped for d in planned) and planned[1].final == first
    landed = (folder / "contacts_2026-11-24.csv").read_bytes()  # the correction, in place
    assert hashlib.sha256(landed).hexdigest() == planned[4].day.sha256
    assert b"region" in landed.splitlines()[0] and f"@{CORRECTED_DOMAIN}".encode() in landed


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


def corrected_run() -> list[Drop]:
    """Three days and a correction of day 2: it changes b's and d's e-mail, leaves out e (day 1
    holds it too) and f (only day 2 had it), and fixes the bad row of x. Day 3 holds d, later."""
    folder = Path("/landing/hubspot/contacts")
    one = day("contacts_2026-11-23.csv", 3, 0, {"a", "b", "e"})
    two = day("contacts_2026-11-24.csv", 5, 1, {"b", "d", "e", "f"})
    three = day("contacts_2026-11-25.csv", 1, 0, {"d"})
    for written, sha in ((one, "s1"), (two, "s2"), (three, "s3")):
        written.updated = {key: f"{written.period}T10:00:00Z" for key in written.keys}
        written.sha256 = sha
    fixed = DayWritten(two.path, two.period, rows=4, bad=0, keys={"b", "d", "x"}, sha256="s2c")
    fixed.updated = {key: f"{two.period}T10:00:00Z" for key in fixed.keys}
    correction = Correction(fixed, two, changed={"b", "d"}, removed={"e", "f"}, fixed={"x"})
    return [
        Drop(one.path, folder / one.path.name, 1.0, one, dropped=True),
        Drop(two.path, folder / two.path.name, 2.0, two, dropped=True),
        Drop(three.path, folder / three.path.name, 3.0, three, dropped=True),
        Drop(fixed.path, folder / two.path.name, 4.0, fixed, dropped=True, correction=correction),
    ]


def loaded_statuses(planned: list[Drop]) -> list[FileStatus]:
    """The status file once all loaded: day 2's name now has the correction's status; day
    2's own was kept when the correction was dropped."""
    planned[1].final = status("contacts_2026-11-24.csv", LOADED, 4, 1, sha="s2", seq=2)
    return [
        status("contacts_2026-11-23.csv", LOADED, 3, 0, sha="s1", seq=1),
        status("contacts_2026-11-24.csv", LOADED, 4, 0, sha="s2c", seq=4),
        status("contacts_2026-11-25.csv", LOADED, 1, 0, sha="s3", seq=3),
    ]


def records(replaces: str | None = "s2") -> dict[str, FileRecord]:
    record = FileRecord("s2c", "u", "hubspot", "contacts", "2026-11-24", "c", 4, 4, 0, 1, "now", replaces)
    return {"s2c": record}


#: The lake's counts when all is well, by the end of their name: each table's rows, then the
#: correction's checks.
RIGHT = {
    RAW_TABLE: 13,
    QUARANTINE_TABLE: 0,  # day 2's bad row went with its first version; the others have none
    CLEANED_TABLE: 5,
    "raw first": 5,
    "raw corrected": 4,
    "quarantine first": 0,
    "replaced": 0,
    "changed": 1,
    "removed": 1,
    "fixed": 1,
}


def lake(planned: list[Drop], wrong: dict[str, int] | None = None) -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    for count in lake_counts(planned):
        role = count.name.rsplit(": ", 1)[-1]
        counts[count.name] = (wrong or {}).get(role, RIGHT[role])
    return counts


def test_a_correction_shows_what_it_replaced_and_its_checks_hold() -> None:
    planned = corrected_run()
    summary = summarize_exports(planned, loaded_statuses(planned), lake(planned), records())
    assert [(line.name, line.status, line.rows) for line in summary.files] == [
        ("contacts_2026-11-23.csv", LOADED, 3),
        ("contacts_2026-11-24.csv", LOADED, 4),  # its own load, not the correction's
        ("contacts_2026-11-25.csv", LOADED, 1),
        (
            "contacts_2026-11-24.csv (corrected)",
            replacing("contacts_2026-11-24.csv", "contacts_2026-11-24.csv"),
            4,
        ),
    ]
    assert summary.ok, render(summary)
    assert [(c.expected, c.found) for c in summary.checks] == [(n, n) for n in RIGHT.values()]
    text = render(summary)
    assert "loaded, replacing the earlier version" in text
    assert "5 rows = rows of contacts_2026-11-24.csv as first sent, kept: raw is append-only (5) ✓" in text
    assert "0 rows = rows from contacts_2026-11-24.csv as first sent: none, replaced (0) ✓" in text
    assert f"1 rows = e-mails the correction fixed (@{CORRECTED_DOMAIN}), where its row is" in text
    assert "1 rows = keys the correction left out: only those another day holds (1) ✓" in text
    assert "1 rows = the bad row it fixed, where its row is the latest version (1) ✓" in text
    assert "✗" not in text


def test_a_correction_not_recorded_as_replacing_or_leaving_old_rows_shows_crosses() -> None:
    planned = corrected_run()
    summary = summarize_exports(planned, loaded_statuses(planned), lake(planned), records(replaces=None))
    assert (summary.files[3].status, summary.files[3].ok) == (LOADED, False)
    assert not summary.ok

    # Day 2's first rows stayed.
    stale = lake(planned, {"quarantine first": 1, "replaced": 3, "changed": 0, "removed": 2})
    summary = summarize_exports(planned, loaded_statuses(planned), stale, records())
    assert [c.ok for c in summary.checks] == [True, True, True, True, True, False, False, False, False, True]
    text = render(summary)
    assert "1 rows = bad rows of contacts_2026-11-24.csv as first sent: none, replaced (0) ✗" in text
    assert "3 rows = rows from contacts_2026-11-24.csv as first sent: none, replaced (0) ✗" in text
    assert "2 rows = keys the correction left out: only those another day holds (1) ✗" in text


def test_a_correction_the_loader_has_not_seen_yet_is_pending() -> None:
    planned = corrected_run()
    statuses = loaded_statuses(planned)
    statuses[1] = planned[1].final or statuses[1]  # the name still shows the first version's load
    assert pending(planned, statuses) == ["contacts_2026-11-24.csv (corrected)"]
    summary = summarize_exports(planned, statuses, lake(planned), records())
    assert summary.files[3].status is None and not summary.ok
