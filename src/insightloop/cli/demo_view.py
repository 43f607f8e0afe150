"""What ``insightloop demo`` shows: a live progress panel, then the report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from insightloop.cli.supervisor import Supervisor
from insightloop.demo.catalog import DRIFT_EVENT, DRIFT_PROPERTY, NO_CONTRACT_EVENT
from insightloop.demo.driver import TrafficRun, TrafficStats
from insightloop.demo.report import EVENT_TABLES, LakeSummary, LatencyTracker, Outcome, percentiles

#: ``summarize`` probe labels: the drifted and the contract-breaking events the demo sent.
DRIFT = "drift"
BROKEN = "broken"
NO_CONTRACT_TABLE = "cleaned.onboarding_step_completed"


@dataclass
class DemoView:
    traffic: TrafficRun
    supervisor: Supervisor
    events: Iterable[str]
    duration: float | None
    phase: str = field(default="sending traffic")

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
    for name, count in lake.cleaned.items():
        tables.add_row(name, f"{count:,}")
    if not lake.cleaned:
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
