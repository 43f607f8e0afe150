"""The demo's corrected export, through the real file loader: the corrected day's file is
dropped under its name once the first version has loaded, loads replacing it, and the
summary's checks, counted in the lake, all hold: raw keeps both versions, cleaned holds the
corrected values and none of the first version's rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from insightloop.cli.demo_view import render_export_summary
from insightloop.config import Config, load_config
from insightloop.demo.export_checks import ExportSummary, replacing
from insightloop.demo.export_drops import CLEANED_TABLE, CORRECTED_DAY, RAW_TABLE
from insightloop.demo.exports import ExportSide
from insightloop.exports.generate import CORRECTED_DOMAIN, DayWritten
from insightloop.exports.landing import Landing
from insightloop.exports.loader import FileLoader
from insightloop.exports.service import due
from insightloop.exports.status import LOADED, UNCHANGED, files_status
from insightloop.lake.catalog import open_catalog

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(
        environ={
            "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
            "INSIGHTLOOP__CONTRACTS__DIR": str(CONTRACTS),
            "INSIGHTLOOP__EXPORTS__METRICS_PORT": "0",
        }
    )


def run_demo_drops(side: ExportSide, loader: FileLoader, landing: Landing) -> None:
    """Drop each planned file at its time and load what the file loader would find then."""
    assert side.run is not None
    for drop in side.run.drops:
        side.drop_due(drop.at)
        for file in due(landing.discover(), loader.statuses):
            loader.load(file)
    assert side.done()


def render(summary: ExportSummary) -> str:
    console = Console(record=True, width=250)
    render_export_summary(console, summary)
    return console.export_text()


def raw_rows_of(config: Config, day: DayWritten) -> int:
    """Rows of one file in raw, counted by hand (``event_id`` is ``<sha256>:<row>``)."""
    table = open_catalog(config).load_table(RAW_TABLE)
    ids = table.scan(selected_fields=("event_id",)).to_arrow().column("event_id").to_pylist()
    return sum(1 for event_id in ids if event_id.startswith(f"{day.sha256}:"))


def test_the_corrected_file_replaces_the_first_and_every_check_holds(config: Config) -> None:
    side = ExportSide(config, 10.0, seed=7)
    side.prepare()
    assert side.run is not None
    drops = side.run.drops
    correction_drop = drops[-1]
    correction = correction_drop.correction
    assert correction is not None
    first = drops[CORRECTED_DAY]
    assert correction_drop.name == first.name and correction.replaces is first.day
    assert correction.changed and correction.removed and len(correction.fixed) == 1

    catalog = open_catalog(config)
    run_demo_drops(side, FileLoader(config, catalog), Landing.from_config(config))

    # The loader's own account: the name's status is the correction's, the first load's kept.
    (status,) = [s for s in files_status(config) if s.uri.endswith(f"/{first.name}")]
    assert status.sha256 == correction.day.sha256 and status.status == LOADED
    assert first.final is not None and first.final.sha256 == first.day.sha256

    summary = side.summary()
    assert [(line.name, line.status) for line in summary.files] == [
        ("contacts_2026-11-23.csv", LOADED),
        ("contacts_2026-11-24.csv", LOADED),
        ("contacts_2026-11-25.csv.gz", LOADED),
        ("contacts_2026-11-23_resent.csv", UNCHANGED),
        (
            "contacts_2026-11-24.csv (corrected)",
            replacing("contacts_2026-11-24.csv", "contacts_2026-11-24.csv"),
        ),
    ]
    assert summary.ok, render(summary)
    by_what = {check.what: check for check in summary.checks}
    assert by_what["rows of the 4 loaded file(s)"].expected == sum(
        d.day.rows for d in drops if d.expect == LOADED
    )
    kept = by_what["rows of contacts_2026-11-24.csv as first sent, kept: raw is append-only"]
    assert kept.found == first.day.rows == raw_rows_of(config, first.day)
    assert (
        by_what["rows of its correction"].found == correction.day.rows == raw_rows_of(config, correction.day)
    )
    assert by_what["rows from contacts_2026-11-24.csv as first sent: none, replaced"].found == 0

    # The numbers the checks expect, against cleaned read here by hand.
    cleaned = open_catalog(config).load_table(CLEANED_TABLE).scan().to_arrow()
    rows = {r["contact_id"]: r for r in cleaned.to_pylist()}
    corrected = {key for key, r in rows.items() if r["email"].endswith(f"@{CORRECTED_DOMAIN}")}
    fixed_emails = by_what[
        f"e-mails the correction fixed (@{CORRECTED_DOMAIN}), where its row is the latest version"
    ]
    assert corrected and corrected <= correction.changed and fixed_emails.found == len(corrected)
    later = drops[CORRECTED_DAY + 1].day
    assert corrected == correction.changed - later.keys  # the next day's version wins elsewhere
    others = drops[0].day.keys | later.keys
    left_out = by_what["keys the correction left out: only those another day holds"]
    assert {k for k in correction.removed if k in rows} == correction.removed & others
    assert left_out.found == len(correction.removed & others)
    assert all(rows[k]["_period"] != first.day.period for k in correction.removed & others)
    (fixed,) = correction.fixed
    if fixed not in later.keys:
        assert rows[fixed]["_file_sha256"] == correction.day.sha256
    assert set(rows) == drops[0].day.keys | correction.day.keys | later.keys

    text = render(summary)
    assert "loaded, replacing the earlier version" in text
    assert "✗" not in text


def test_a_correction_waits_for_the_file_it_corrects(config: Config) -> None:
    side = ExportSide(config, 10.0, seed=7)
    side.prepare()
    assert side.run is not None
    side.drop_all()  # nothing has loaded: the correction must wait
    assert [d.dropped for d in side.run.drops] == [True, True, True, True, False]
    assert not side.done()
    loader = FileLoader(config, open_catalog(config))
    for file in due(Landing.from_config(config).discover(), loader.statuses):
        loader.load(file)
    assert not side.run.drops[-1].dropped
    side.done()  # looks again: the first version is final now, so the correction drops
    assert side.run.drops[-1].dropped
    assert [line.name for line in side.summary().files][-1] == "contacts_2026-11-24.csv (corrected)"
