"""``insightloop quarantine list|show|replay``: what stage 2 quarantined, why, and running it again.

Both commands read ``quarantine.sdk_events`` through the warehouse (one pinned snapshot) and
take the same selection options. Another command (``replay``) reuses them: declare its
parameters with the ``*Option`` aliases below and build its ``Selection`` with
``selection_from``, e.g.::

    @quarantine_app.command()
    def replay(ctx: typer.Context, source: SourceOption = None, stream: StreamOption = None,
               kind: KindOption = None, contract: ContractOption = None, since: SinceOption = None,
               until: UntilOption = None, event_id: EventIdOption = None, limit: LimitOption = None) -> None:
        selection = selection_from(source, stream, kind, contract, since, until, event_id, limit)
        ...  # table.scan(row_filter=selection.row_filter())

A bad option (unknown kind, unreadable time) exits with code 2 and one line on stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec
import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from insightloop.cli.context import CONFIG_EXIT, config_errors_exit, fail, state
from insightloop.errors import TerminalError
from insightloop.quarantine import KINDS, Selection, SelectionError

if TYPE_CHECKING:
    from insightloop.quarantine.reading import Group
    from insightloop.quarantine.replay import ReplayResult

quarantine_app = typer.Typer(
    help="Events stage 2 could not load, kept with why: list groups of them, show them one by one,"
    " replay them once a contract or a rule is fixed.",
    no_args_is_help=True,
)

NOTHING = "nothing in quarantine"
SHOW_LIMIT = 20

SourceOption = Annotated[list[str] | None, typer.Option("--source", help="Only this source (repeatable).")]
StreamOption = Annotated[
    list[str] | None,
    typer.Option("--stream", help="Only this stream: track, identify, …, rejected (repeatable)."),
]
KindOption = Annotated[
    list[str] | None,
    typer.Option("--kind", help=f"Only this failure kind (repeatable): {', '.join(KINDS)}."),
]
ContractOption = Annotated[
    list[str] | None,
    typer.Option(
        "--contract",
        help="A contract key (track/invite_sent/1-0-0) or a prefix (track/invite_sent); repeatable.",
    ),
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Received at or after: ISO 8601, or an age (30m, 2h, 3d).")
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="Received before: ISO 8601, or an age (30m, 2h, 3d).")
]
EventIdOption = Annotated[
    list[str] | None, typer.Option("--event-id", help="Only this event id (repeatable).")
]
LimitOption = Annotated[int | None, typer.Option("--limit", "-n", help="At most this many rows.", min=1)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]


def selection_from(
    source: list[str] | None,
    stream: list[str] | None,
    kind: list[str] | None,
    contract: list[str] | None,
    since: str | None,
    until: str | None,
    event_id: list[str] | None,
    limit: int | None,
) -> Selection:
    """The ``Selection`` of the options; a bad one exits with code 2 and its message."""
    try:
        return Selection.parse(
            sources=source or (),
            streams=stream or (),
            kinds=kind or (),
            contracts=contract or (),
            since=since,
            until=until,
            event_ids=event_id or (),
            limit=limit,
        )
    except SelectionError as exc:
        raise fail(str(exc), CONFIG_EXIT) from None


@quarantine_app.command("list")
def list_groups(
    ctx: typer.Context,
    source: SourceOption = None,
    stream: StreamOption = None,
    kind: KindOption = None,
    contract: ContractOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    event_id: EventIdOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="At most this many groups.", min=1)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Quarantined rows grouped by source, stream, kind, contract and reason, newest first."""
    from insightloop.quarantine.present import group_data
    from insightloop.quarantine.reading import groups, open_quarantine

    selection = selection_from(source, stream, kind, contract, since, until, event_id, None)
    config = state(ctx).config()
    with config_errors_exit(), open_quarantine(config) as con:
        found = [] if con is None else groups(con, selection)
    total = sum(group.rows for group in found)
    shown = found[:limit] if limit else found
    if as_json:
        data = {
            "total": total,
            "groups": [group_data(g) for g in shown],
            "more_groups": len(found) - len(shown),
        }
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    if not found:
        typer.echo(NOTHING if selection.selects_all() else f"{NOTHING} matches: {selection.describe()}")
        return
    _render_groups(shown, total, len(found), Console())


@quarantine_app.command("show")
def show(
    ctx: typer.Context,
    source: SourceOption = None,
    stream: StreamOption = None,
    kind: KindOption = None,
    contract: ContractOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    event_id: EventIdOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many rows.", min=1)] = SHOW_LIMIT,
    as_json: JsonOption = False,
) -> None:
    """Quarantined rows one by one, newest first: why (every violation) and the payload as received."""
    from insightloop.quarantine.present import format_row, row_data
    from insightloop.quarantine.reading import count, open_quarantine, rows

    selection = selection_from(source, stream, kind, contract, since, until, event_id, limit)
    config = state(ctx).config()
    with config_errors_exit(), open_quarantine(config) as con:
        total = 0 if con is None else count(con, selection)
        found = [] if con is None else rows(con, selection)
    if as_json:
        data = {"total": total, "rows": [row_data(row) for row in found]}
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    if not found:
        typer.echo(NOTHING if selection.selects_all() else f"{NOTHING} matches: {selection.describe()}")
        return
    for row in found:
        typer.echo(format_row(row) + "\n")
    more = f" (the newest {len(found)}; --limit N for more)" if total > len(found) else ""
    typer.echo(f"{len(found)} of {total:,} quarantined row{'s' if total != 1 else ''}{more}")


def _render_groups(shown: list[Group], total: int, all_groups: int, console: Console) -> None:
    table = Table(
        "rows", "source", "stream", "kind", "contract", "reason", "last received", header_style="bold"
    )
    for group in shown:
        last = "-" if group.last_received is None else group.last_received.isoformat(timespec="seconds")
        table.add_row(
            f"{group.rows:,}",
            group.source or "-",
            group.stream or "-",
            group.kind or "-",
            group.contract or "-",
            Text(group.reason),
            last,
        )
    console.print(table)
    hidden = f" ({all_groups - len(shown)} more groups: --limit N)" if all_groups > len(shown) else ""
    console.print(f"{total:,} quarantined rows in {all_groups:,} groups{hidden}", highlight=False)


@quarantine_app.command("replay")
def replay(
    ctx: typer.Context,
    source: SourceOption = None,
    stream: StreamOption = None,
    kind: KindOption = None,
    contract: ContractOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    event_id: EventIdOption = None,
    limit: LimitOption = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the running cleaner to apply it.")
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the running cleaner.", min=1)
    ] = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Run the selected quarantined events again through today's contracts and rules.

    Those that pass land in their cleaned tables and leave quarantine; those that still fail
    stay, once, with today's reasons. Safe to run twice. When a cleaner runs, it applies the
    replay between two batches (this command waits for it); otherwise this command applies it."""
    from insightloop.lake.catalog import lake_root, open_catalog
    from insightloop.processor.cleaned.stage import CleanedStage
    from insightloop.processor.runner import CLEANER_LOCK, exclusive
    from insightloop.quarantine.replay import ReplayQueue

    selection = selection_from(source, stream, kind, contract, since, until, event_id, limit)
    config = state(ctx).config()
    queue = ReplayQueue(config)
    request = queue.submit(selection)
    result = None
    try:
        with config_errors_exit(), exclusive(lake_root(config) / CLEANER_LOCK, "a cleaner runs"):
            catalog = open_catalog(config)
            for applied in queue.apply_pending(CleanedStage(catalog, config), catalog):
                if applied.request == request:
                    result = applied
    except TerminalError:
        if not wait:
            typer.echo(f"replay {request} queued: the running cleaner applies it ({selection.describe()})")
            return
        typer.echo(f"the running cleaner applies replay {request} …", err=True)
        result = queue.wait(request, timeout)
        if result is None:
            raise fail(
                f"replay {request} not applied within {timeout:g} s: is the cleaner stuck? "
                "It stays queued and is applied when the cleaner next runs",
                1,
            ) from None
    assert result is not None
    if as_json:
        typer.echo(orjson.dumps(msgspec.structs.asdict(result), option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(_replay_summary(result, selection))


def _replay_summary(result: ReplayResult, selection: Selection) -> str:
    if result.selected == 0:
        return f"{NOTHING} matches: {selection.describe()}" if not selection.selects_all() else NOTHING
    lines = [
        f"replayed {result.selected:,} quarantined event{'s' if result.selected != 1 else ''}"
        f" ({selection.describe()}):",
        f"  {result.landed:,} landed (left quarantine)",
        f"  {result.duplicates:,} already loaded by a later copy (left quarantine)",
        f"  {result.still_failing:,} still failing (kept once, with today's reasons)",
    ]
    for failing_kind, rows in sorted(result.failing_by_kind.items()):
        lines.append(f"    {rows:,} {failing_kind}")
    if result.not_replayable:
        lines.append(
            f"  {result.not_replayable:,} rejected by the collector: not replayed (the producer must resend)"
        )
    if result.missing_raw:
        lines.append(f"  {result.missing_raw:,} no longer in raw (expired): not replayed")
    return "\n".join(lines)
