"""The CDC part of the demo's report: lag timing, and a summary that shows a mismatch as one."""

from __future__ import annotations

from rich.console import Console

from insightloop.cli.demo_cdc import CdcOutcome
from insightloop.cli.demo_view import render_cdc_summary
from insightloop.demo.cdc import AppTable, CdcSummary, LagTracker, SchemaCheck


def test_a_mark_is_timed_when_the_lake_applies_past_it() -> None:
    lag = LagTracker()
    lag.note(100, at=10.0)
    lag.note(200, at=12.0)
    lag.applied(None, now=13.0)
    lag.applied(150, now=14.0)
    assert lag.lags == [4.0]
    lag.drained(now=20.0)
    assert lag.lags == [4.0, 8.0]
    assert not lag.pending


def render(outcome: CdcOutcome) -> str:
    console = Console(record=True, width=200)
    render_cdc_summary(console, outcome)
    return console.export_text()


def summary(live_users: int | None) -> CdcSummary:
    return CdcSummary(
        tables=[
            AppTable("public.accounts", "cleaned.app_accounts", 10, 10, 2, 30),
            AppTable("public.users", "cleaned.app_users", 25, live_users, 0, 40),
        ],
        captured={"r": 4, "c": 50, "u": 20, "d": 2},
        schema=[
            SchemaCheck("accounts.industry", "cleaned.app_accounts.industry", "text", "string", "text"),
            SchemaCheck("invoices.amount_cents", "cleaned.app_invoices.amount_cents", None, "int", "bigint"),
        ],
    )


def test_equal_tables_are_checked_and_the_changes_named() -> None:
    text = render(CdcOutcome(dsn="host=x", workload=True, changes_made=72, missing=None, summary=summary(25)))
    assert "live rows = source rows in all 2 tables ✓" in text
    assert "the lake reached the source's last LSN ✓" in text
    assert "76 changes in raw.cdc_changes: 4 snapshot reads, 50 inserts, 20 updates, 2 deletes" in text
    assert "cleaned.app_accounts.industry is string ✓" in text
    assert "invoices.amount_cents bigint: not in the source (the workload did not get that far)" in text
    assert "✗" not in text


def test_a_table_that_differs_or_a_lake_behind_shows_a_cross() -> None:
    outcome = CdcOutcome(
        dsn="host=x", workload=True, missing="the CDC processor is 3 log records behind", summary=summary(24)
    )
    text = render(outcome)
    users = next(line for line in text.splitlines() if "public.users" in line)
    assert "✗" in users and "24" in users
    assert "1 of 2 tables differ: public.users" in text
    assert "not when the demo stopped waiting: the CDC processor is 3 log records behind" in text


def test_a_table_missing_from_the_lake_differs() -> None:
    text = render(CdcOutcome(dsn="host=x", missing=None, summary=summary(None)))
    assert "1 of 2 tables differ: public.users" in text
    assert "captured as it is (the demo does not write to it)" in text


def test_cdc_off_is_one_line_saying_why() -> None:
    text = render(CdcOutcome(off="off (cdc.enabled = false)"))
    assert text.strip() == "Change data capture: off (cdc.enabled = false)"
