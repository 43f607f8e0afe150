"""What ``insightloop demo`` shows: a live progress panel, then the report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from insightloop.cli.demo_cdc import LAG_EVERY, CdcOutcome, CdcSide
from insightloop.cli.supervisor import Supervisor
from insightloop.demo.catalog import DRIFT_EVENT, DRIFT_PROPERTY, NO_CONTRACT_EVENT
from insightloop.demo.cdc import CdcSummary, SchemaCheck
from insightloop.demo.driver import TrafficRun, TrafficStats
from insightloop.demo.export_checks import ExportSummary
from insightloop.demo.exports import ExportSide
from insightloop.demo.report import EVENT_TABLES, LakeSummary, LatencyTracker, Outcome, percentiles
from insightloop.exports.status import LOADED
from insightloop.processor.cdc import naming

#: ``summarize`` probe labels: the drifted and the contract-breaking events the demo sent.
DRIFT = "drift"
BROKEN = "broken"
NO_CONTRACT_TABLE = "cleaned.onboarding_step_completed"
CDC_TABLES = f"{naming.CLEANED}.{naming.PREFIX}"


@dataclass
class DemoView:
    traffic: TrafficRun
    supervisor: Supervisor
    events: Iterable[str]
    duration: float | None
    phase: str = field(default="sending traffic")
    cdc: CdcSide | None = None
    exports: ExportSide | None = None

    def render(self, rows: dict[str, int], latency: LatencyTracker) -> Panel:
        with self.traffic.lock:
            stats = self.traffic.stats
            elapsed = stats.elapsed()
            accepted, requests, throttled = stats.events_accepted, stats.requests_ok, stats.throttled
            failed, error = stats.requests_failed, stats.last_error
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        total = f" of {self.duration:.0f}" if self.duration else ""
        grid.add_row("phase", f"{self.phase} — {elapsed:.0f} s{total}")
        speed = accepted / elapsed if elapsed > 0 else 0.0
        grid.add_row("sent", f"{accepted:,} events in {requests:,} requests ({speed:,.0f} events/s accepted)")
        problems = f"{throttled:,} throttled (429), {failed:,} failed"
        grid.add_row("", problems + (f" — last: {error}" if failed and error else ""))
        cleaned = sum(
            n for t, n in rows.items() if t.split(".", 1)[-1] in EVENT_TABLES and t.startswith("cleaned.")
        )
        quarantined = sum(n for t, n in rows.items() if t.startswith("quarantine."))
        grid.add_row(
            "lake",
            f"raw {rows.get('raw.sdk_events', 0):,} · cleaned events {cleaned:,} "
            f"· quarantine {quarantined:,}",
        )
        cdc_line = None if self.cdc is None else self.cdc.panel(rows)
        if cdc_line is not None:
            grid.add_row("cdc", cdc_line)
        export_line = None if self.exports is None else self.exports.panel()
        if export_line is not None:
            grid.add_row("exports", export_line)
        stats_line = percentiles(latency.latencies)
        seen = len(latency.latencies)
        where = latency.table or "the warehouse"
        if stats_line is None:
            grid.add_row("latency", f"waiting for the first marker event in {where}")
        else:
            grid.add_row(
                "latency",
                f"accepted → queryable in {where}: median {stats_line[0]:.1f} s, max {stats_line[2]:.1f} s "
                f"({seen} markers seen, {len(latency.pending)} pending)",
            )
        restarts = ", ".join(f"{k} {v}" for k, v in self.supervisor.restarts.items()) or "none"
        grid.add_row("restarts", restarts)
        for line in list(self.events)[-3:]:
            grid.add_row("", f"[yellow]{line}[/]")
        return Panel(grid, title="InsightLoop demo", title_align="left")


def render_summary(
    console: Console,
    stats: TrafficStats,
    lake: LakeSummary,
    latency: LatencyTracker,
    poll_every: float,
    drift_at: dt.datetime | None = None,
) -> None:
    console.print()
    tables = Table("cleaned table", "rows", title="What landed where", title_justify="left")
    # cleaned.app_* (CDC's) have their own account: ``render_cdc_summary``.
    events = {name: n for name, n in lake.cleaned.items() if not name.startswith(CDC_TABLES)}
    for name, count in events.items():
        tables.add_row(name, f"{count:,}")
    if not events:
        tables.add_row("(none yet)", "0")
    console.print(tables)

    quarantine = Table("kind", "contract", "rows", "example reason", title="Quarantine", title_justify="left")
    for line in lake.quarantine:
        quarantine.add_row(line.kind, line.contract or "-", f"{line.rows:,}", Text(line.example))
    quarantine.add_row(
        "[bold]total[/]", "", f"{lake.quarantine_total:,}", "insightloop quarantine list | show"
    )
    console.print(quarantine)

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row(
        "sent",
        f"{stats.events_accepted:,} events accepted: {stats.valid_sent:,} valid "
        f"incl. {stats.retried_copies:,} re-sent copies ({stats.valid_distinct:,} distinct), "
        f"{stats.invalid_distinct:,} invalid",
    )
    _contract_facts(facts, stats, lake, drift_at)
    copies = lake.raw_good - lake.raw_distinct_good
    facts.add_row(
        "raw",
        f"{lake.raw_rows:,} rows as received: {lake.raw_rejected:,} rejected by the collector's checks, "
        f"{copies:,} duplicate copies of a messageId",
    )
    if lake.cleaned:
        facts.add_row(
            "duplicates",
            f"{lake.raw_good - lake.landed - lake.stage2_quarantined:,} removed by messageId on the way to "
            "cleaned "
            f"(sent {stats.retried_copies:,} re-sent copies)",
        )
        facts.add_row(
            "accounted",
            f"{lake.landed:,} distinct events in cleaned.{{{','.join(EVENT_TABLES)}}} "
            f"of {stats.valid_distinct:,} distinct valid events sent",
        )
    else:
        facts.add_row("cleaned", "no cleaned tables yet (is stage 2, the cleaner, running?)")
    facts.add_row("late", f"{lake.late:,} events landed more than a day late (sent {stats.late_distinct:,})")
    facts.add_row("clock skew", f"{lake.in_future:,} events in the future after clock-skew correction")
    elapsed = stats.elapsed()
    speed = stats.events_accepted / elapsed if elapsed > 0 else 0.0
    facts.add_row(
        "throughput",
        f"{speed:,.0f} events/s accepted over {elapsed:.0f} s ({stats.throttled:,} answers were 429)",
    )
    stats_line = percentiles(latency.latencies)
    if stats_line is None:
        facts.add_row("latency", "no marker event became visible")
    else:
        median, p95, worst = stats_line
        facts.add_row(
            "latency",
            f"accepted → queryable in {latency.table}: "
            f"median {median:.1f} s, p95 {p95:.1f} s, max {worst:.1f} s "
            f"({len(latency.latencies)} markers, polled every {poll_every:.0f} s"
            + (f"; {len(latency.pending)} never seen)" if latency.pending else ")"),
        )
    console.print(Panel(Group(facts), title="Summary", title_align="left"))


def _contract_facts(
    facts: Table, stats: TrafficStats, lake: LakeSummary, drift_at: dt.datetime | None
) -> None:
    """What became of the events sent to drift from, break or lack their contracts: counted in
    the tables (by message id), beside what the generator sent."""
    if drift_at is not None:
        when = drift_at.astimezone(dt.UTC).strftime("%H:%M:%S")
        facts.add_row(
            "schema drift",
            f"{DRIFT_EVENT!r} gained {DRIFT_PROPERTY!r} at {when} UTC: "
            + _outcome_text(stats.drift_sent, len(stats.drift_ids), lake.outcomes.get(DRIFT)),
        )
    facts.add_row(
        "broken contract",
        "wrong type or missing property: "
        + _outcome_text(stats.broken_sent, len(stats.broken_ids), lake.outcomes.get(BROKEN)),
    )
    loaded = lake.cleaned.get(NO_CONTRACT_TABLE, 0)
    check = "✓" if loaded == stats.no_contract_distinct else "[red]✗[/]"
    facts.add_row(
        "no contract",
        f"{NO_CONTRACT_EVENT!r}: sent {stats.no_contract_distinct:,} distinct, loaded {loaded:,} "
        f"in {NO_CONTRACT_TABLE} (allowed by default) {check}",
    )


def _outcome_text(sent: int, distinct: int, outcome: Outcome | None) -> str:
    found = outcome or Outcome()
    check = "✓" if found.contract_violations == sent and found.loaded == 0 else "[red]✗[/]"
    return (
        f"sent {sent:,} ({distinct:,} distinct), quarantined {found.contract_violations:,} as "
        f"contract_violation, loaded {found.loaded:,} {check}"
    )


#: Debezium ops, as the summary names them.
OPS = {"r": "snapshot reads", "c": "inserts", "u": "updates", "d": "deletes", "t": "truncates"}
OK = "✓"
NOT_OK = "[red]✗[/]"


def render_cdc_summary(console: Console, outcome: CdcOutcome) -> None:
    """Change data capture: rows per table in the source and in the lake (✓ when equal), the
    changes captured, the schema change on both sides, the lag."""
    console.print()
    if outcome.off is not None:
        console.print(f"[bold]Change data capture[/]: {outcome.off}", highlight=False)
        return
    summary = outcome.summary or CdcSummary()
    tables = Table(
        "source table",
        "source rows",
        "cleaned table",
        "live rows",
        "tombstones",
        "history rows",
        "equal",
        title="Change data capture: source rows vs live rows in the lake (WHERE NOT _deleted)",
        title_justify="left",
    )
    for t in summary.tables:
        live = "-" if t.live_rows is None else f"{t.live_rows:,}"
        tables.add_row(
            t.source,
            f"{t.source_rows:,}",
            t.lake,
            live,
            f"{t.deleted_rows:,}",
            f"{t.history_rows:,}",
            OK if t.equal else NOT_OK,
        )
    if summary.tables:
        console.print(tables)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    if summary.error is not None:
        facts.add_row("source", f"[red]{summary.error}[/]")
    if outcome.workload:
        made = f"workload: {outcome.changes_made:,} changes in {outcome.transactions:,} transactions"
        if outcome.workload_error:
            made += f" [red](stopped early: {outcome.workload_error})[/]"
        facts.add_row("source", made)
    else:
        facts.add_row("source", "cdc.dsn: captured as it is (the demo does not write to it)")
    captured = sum(summary.captured.values())
    ops = ", ".join(f"{summary.captured[op]:,} {OPS.get(op, op)}" for op in OPS if op in summary.captured)
    facts.add_row("captured", f"{captured:,} changes in raw.cdc_changes" + (f": {ops}" if ops else ""))
    if outcome.missing is None:
        facts.add_row("caught up", f"the lake reached the source's last LSN {OK}")
    else:
        facts.add_row("caught up", f"{NOT_OK} not when the demo stopped waiting: {outcome.missing}")
    differ = [t.source for t in summary.tables if not t.equal]
    if summary.tables:
        facts.add_row(
            "equal",
            f"live rows = source rows in all {len(summary.tables)} tables {OK}"
            if not differ
            else f"{NOT_OK} {len(differ)} of {len(summary.tables)} tables differ: {', '.join(differ)}",
        )
    for check in summary.schema:
        facts.add_row("schema change", _schema_text(check, outcome.workload))
    facts.add_row("lag", _lag_text(outcome.lags))
    console.print(Panel(Group(facts), title="Change data capture", title_align="left"))


def _schema_text(check: SchemaCheck, workload: bool) -> str:
    if not check.reached:
        why = "the workload did not get that far" if workload else "not in this database"
        return f"{check.source} {check.expected}: not in the source ({why})"
    lake = check.lake_type or "missing"
    return f"{check.source} is {check.source_type} in the source → {check.lake} is {lake} " + (
        OK if check.seen else NOT_OK
    )


def _lag_text(lags: list[float]) -> str:
    line = percentiles(lags)
    if line is None:
        return "not measured (no source change was timed)"
    median, p95, worst = line
    return (
        f"source commit → queryable in cleaned.app_*: median {median:.1f} s, p95 {p95:.1f} s, "
        f"max {worst:.1f} s ({len(lags)} samples, polled every {LAG_EVERY:.0f} s)"
    )


def render_export_summary(console: Console, summary: ExportSummary) -> None:
    """Batch exports: each dropped file's status, rows and bad rows (✓ when as the generator
    wrote it), and the export tables' counts against the loaded files."""
    console.print()
    if summary.off is not None:
        console.print(f"[bold]Batch exports[/]: {summary.off}", highlight=False)
        return
    files = Table(
        "file",
        "period",
        "status",
        "good rows",
        "bad rows",
        "expected (as generated)",
        "ok",
        title="Batch exports: the files dropped into the landing zone",
        title_justify="left",
    )
    for line in summary.files:
        status = line.status or "[yellow]not final[/]"
        if line.reason and line.status != LOADED:
            status += f" ({line.reason})"
        expected = f"{line.expect}, {line.expected_rows:,} good, {line.expected_bad:,} bad"
        files.add_row(
            line.name,
            line.period,
            Text.from_markup(status) if line.status is None else Text(status),
            f"{line.rows:,}",
            f"{line.bad_rows:,}",
            expected,
            OK if line.ok else NOT_OK,
        )
    console.print(files)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    if summary.pending:
        facts.add_row(
            "final", f"{NOT_OK} no final status when the demo stopped waiting: {', '.join(summary.pending)}"
        )
    else:
        facts.add_row("final", f"every dropped file has a final status {OK}")
    for check in summary.checks:
        found = "missing" if check.found is None else f"{check.found:,} rows"
        facts.add_row(
            check.table,
            f"{found} = {check.what} ({check.expected:,}) {OK if check.ok else NOT_OK}",
        )
    if summary.error is not None:
        facts.add_row("error", f"[red]{summary.error}[/]")
    console.print(Panel(Group(facts), title="Batch exports", title_align="left"))
