"""What ``insightloop demo`` shows: a live progress panel, then the report."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from insightloop.cli.supervisor import Supervisor
from insightloop.demo.driver import TrafficRun, TrafficStats
from insightloop.demo.report import EVENT_TABLES, LakeSummary, LatencyTracker, percentiles


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
    console: Console, stats: TrafficStats, lake: LakeSummary, latency: LatencyTracker, poll_every: float
) -> None:
    console.print()
    tables = Table("cleaned table", "rows", title="What landed where", title_justify="left")
    for name, count in lake.cleaned.items():
        tables.add_row(name, f"{count:,}")
    if not lake.cleaned:
        tables.add_row("(none yet)", "0")
    console.print(tables)

    quarantine = Table("quarantine reason", "rows", title="Quarantine", title_justify="left")
    for reason, count in lake.quarantine:
        quarantine.add_row(reason, f"{count:,}")
    quarantine.add_row("[bold]total[/]", f"{lake.quarantine_total:,}")
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
    copies = lake.raw_good - lake.raw_distinct_good
    facts.add_row(
        "raw",
        f"{lake.raw_rows:,} rows as received: {lake.raw_rejected:,} rejected by the collector's checks, "
        f"{copies:,} duplicate copies of a messageId",
    )
    if lake.cleaned:
        facts.add_row(
            "duplicates",
            f"{lake.raw_good - lake.landed:,} removed by messageId on the way to cleaned "
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
