"""Showing a ``status.Status`` to people (rich tables) or programs (JSON)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from insightloop.cli.status import QuarantineStatus, Status


def to_json(status: Status) -> str:
    return msgspec.json.format(msgspec.json.encode(status)).decode()


def render(status: Status, console: Console) -> None:
    console.print(f"data dir: {status.data_dir}   (at {status.generated_at})", highlight=False)
    services = Table("service", "up", "detail", title="Services", title_justify="left")
    for service in status.services:
        services.add_row(service.name, "[green]yes[/]" if service.up else "[red]no[/]", service.detail)
    console.print(services)
    stage2 = status.stage2
    where = "in the cleaner" if stage2.mode == "separate" else "inline, in the processor"
    if stage2.raw_seq is None:
        console.print(f"Stage 2 ({where}): raw is empty", highlight=False)
    else:
        console.print(
            f"Stage 2 ({where}): applied raw seq {stage2.watermark:,} of {stage2.raw_seq:,} "
            f"(lag {stage2.lag:,} raw commits)",
            highlight=False,
        )

    if status.tables:
        now = dt.datetime.fromisoformat(status.generated_at)
        tables = Table(
            "table", "rows", "last commit", "newest row", "+1 min", "rows/s",
            title="Tables", title_justify="left",
        )  # fmt: skip
        tables.columns[0].no_wrap = True
        for t in status.tables:
            tables.add_row(
                t.table,
                f"{t.rows:,}",
                _age(t.last_commit, now),
                _age(t.newest, now),
                f"{t.rows_last_minute:,}",
                f"{t.rows_per_second:,.0f}",
            )
        console.print(tables)
    else:
        console.print("Tables: none yet (nothing has been processed into the lake)")

    render_quarantine(status.quarantine, console)
    if status.cdc is not None:
        render_cdc(status.cdc, console)
    if status.exports:
        render_exports(status, console)

    if status.log:
        shards = Table(
            "shard", "processed up to", "lag (records)", "lag (seconds)", title="Log", title_justify="left"
        )
        for s in status.log:
            upto = s.checkpoint if s.checkpoint is not None else s.committed
            shards.add_row(
                s.shard,
                "-" if upto is None else str(upto),
                "-" if s.lag_records is None else f"{s.lag_records:,}",
                "-" if s.lag_seconds is None else f"{s.lag_seconds:.1f}",
            )
        console.print(shards)
    elif status.log_error:
        console.print(f"Log: {status.log_error}", highlight=False)
    else:
        console.print("Log: none yet")


#: Export files shown by ``status`` (the newest; ``--json`` has them all).
EXPORT_FILES_SHOWN = 10


def render_exports(status: Status, console: Console) -> None:
    """The newest export files and what became of them."""
    files = Table(
        "file",
        "period",
        "status",
        "rows",
        "bad",
        "MB",
        "s",
        "reason",
        title="Export files",
        title_justify="left",
    )
    for f in status.exports[:EXPORT_FILES_SHOWN]:
        style = {"rejected": "red", "failed": "red", "loading": "yellow"}.get(f.status, "green")
        files.add_row(
            f"{f.source}/{f.entity}/{f.uri.rsplit('/', 1)[-1]}",
            " part ".join(filter(None, (f.period, f.part))),
            f"[{style}]{f.status}[/]",
            f"{f.rows:,}",
            f"{f.bad_rows:,}",
            f"{f.size / 1e6:,.1f}",
            f"{f.seconds:,.1f}",
            f.reason or "",
        )
    console.print(files)
    more = len(status.exports) - EXPORT_FILES_SHOWN
    if more > 0:
        console.print(f"(and {more:,} older files: insightloop status --json)", style="dim")


def render_cdc(cdc: dict[str, Any], console: Console) -> None:
    """The CDC reader's progress and its slot on the source database."""
    state, server = cdc.get("state"), cdc.get("server")
    parts = [f"slot {cdc['slot']}"]
    if state is not None:
        snapshot = state["snapshot"]
        parts.append(f"confirmed {state['confirmed_lsn']}")
        if snapshot["complete"]:
            parts.append(f"snapshot done ({snapshot['rows']:,} rows)")
        else:
            done, total = snapshot["tables_done"], snapshot["tables_total"]
            parts.append(f"snapshot {done}/{total} tables, {snapshot['rows']:,} rows")
        if state["resnapshots"]:
            parts.append(f"{state['resnapshots']} re-snapshot(s) after a lost slot")
    if server is not None and server.get("slot_missing"):
        parts.append("[red]slot missing on the source[/]")
    elif server is not None:
        parts.append(f"lag {_bytes(server['lag_bytes'])}")
        parts.append(f"WAL retained {_bytes(server['retained_wal_bytes'])}")
        if not server["active"]:
            parts.append("[yellow]no reader connected[/]")
        if server["wal_retention_warning"]:
            parts.append("[red]WAL retention above cdc.wal_warn_bytes: the source disk may fill[/]")
    console.print("CDC: " + ", ".join(parts), highlight=False)
    if cdc.get("error"):
        console.print(f"CDC: {cdc['error']}", style="yellow", highlight=False)


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GiB"


def render_quarantine(quarantine: QuarantineStatus, console: Console) -> None:
    if not quarantine.total:
        console.print("Quarantine: empty")
        return
    title = (
        f"Quarantine: {quarantine.last_hour:,} rows in the last hour ({quarantine.per_minute:,.1f}/min), "
        f"{quarantine.last_day:,} in 24 h, {quarantine.total:,} in all"
    )
    table = Table(
        "source", "kind", "contract", "last hour", "last 24 h", "all", "rows/min",
        title=title, title_justify="left",
    )  # fmt: skip
    for c in quarantine.counts:
        table.add_row(
            c.source or "-",
            c.kind or "-",
            c.contract or "-",
            f"{c.last_hour:,}",
            f"{c.last_day:,}",
            f"{c.total:,}",
            f"{c.per_minute:,.1f}",
        )
    console.print(table)
    console.print("details: insightloop quarantine list", style="dim", highlight=False)


def _age(moment: str | None, now: dt.datetime) -> str:
    """``"12 s ago"``, ``"3 min ago"``, ``"2 h ago"``, ``"4 d ago"``; in the future: ``"in 5 s"``."""
    if moment is None:
        return "-"
    seconds = (now - dt.datetime.fromisoformat(moment)).total_seconds()
    ahead, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{seconds / size:.0f} {unit}"
            break
    else:
        text = f"{seconds:.0f} s"
    return f"in {text}" if ahead else f"{text} ago"
