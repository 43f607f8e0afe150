"""``insightloop load PATH`` (one export file or a folder of them, by hand, with a progress
bar; local, or an ``s3://bucket/key`` or prefix read with ``exports.s3_region``/``s3_endpoint``)
and ``insightloop loader`` (the file loader process, polling the landing zone).

``load`` exits 0 when every file loaded or was already loaded (a no-op), 1 when any was
rejected or failed (the lake could not be written: a full disk; nothing of the file is
committed) or the file loader holds the lake's lock, 2 on bad usage or config. Each file's
source and entity are ``--source``/``--entity``, or else the names of its grandparent and
parent folders (``<landing>/<source>/<entity>/<file>``). A folder's files each commit to raw
in turn; their good rows are then merged into cleaned together (one rewrite of an entity's
table), or every ``exports.merge_after_mb`` of them.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from insightloop.cli.context import config_errors_exit, fail, state

if TYPE_CHECKING:
    from insightloop.exports.landing import LandedFile
    from insightloop.exports.loader import FileLoader, LoadOutcome

_MB = 1_000_000


def load(
    ctx: typer.Context,
    path: Annotated[
        str,
        typer.Argument(
            help="An export file, or a folder of them (searched recursively); local or s3://bucket/key."
        ),
    ],
    source: Annotated[
        str | None, typer.Option(help="The files' source (default: each file's grandparent folder).")
    ] = None,
    entity: Annotated[
        str | None,
        typer.Option(help="The files' entity, as its contract export/<entity> (default: parent folder)."),
    ] = None,
) -> None:
    """Load export files (CSV, JSON lines, Parquet; .gz/.zst) into raw, cleaned and quarantine."""
    from insightloop.errors import TerminalError
    from insightloop.exports.landing import given_files
    from insightloop.exports.loader import FileLoader, lock_path
    from insightloop.lake.catalog import open_catalog
    from insightloop.processor.runner import exclusive

    config = state(ctx).config()
    try:
        with config_errors_exit():
            files = given_files(path, config.exports, source, entity)
    except FileNotFoundError:
        raise fail(f"{path} does not exist", 2) from None
    except (OSError, ValueError) as exc:  # pyarrow: an unknown scheme, no access, no network
        raise fail(f"{path} cannot be listed: {_first_line(exc)}", 2) from None
    if not files:
        raise fail(f"no export files in {path} (.csv, .tsv, .jsonl, .ndjson, .parquet; .gz, .zst)", 2)
    out = Console(highlight=False, soft_wrap=True)
    lock = lock_path(config)
    try:
        with (
            config_errors_exit(),
            exclusive(
                lock,
                f"the file loader holds {lock}: put the file in the landing zone, or stop the loader first",
            ),
        ):
            loader = FileLoader(config, open_catalog(config))
            committed: list[LoadOutcome] = []
            done: list[LoadOutcome] = []
            for file in files:
                outcome = _commit_one(loader, file)
                if outcome.status != "loaded":
                    out.print(_describe(outcome), markup=False)
                    done.append(outcome)
                    continue
                committed.append(outcome)
                if loader.merge_due(committed):
                    done += _finish(loader, committed, out)
                    committed = []
            done += _finish(loader, committed, out)
            failed = sum(outcome.status in ("rejected", "failed") for outcome in done)
    except TerminalError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(1 if failed else 0)


def _finish(loader: FileLoader, committed: list[LoadOutcome], out: Console) -> list[LoadOutcome]:
    """Stage 2 of the files committed (one merge into cleaned), then a line for each."""
    if not committed:
        return []
    with Console(stderr=True).status(f"merging {len(committed)} file(s) into quarantine and cleaned"):
        done = loader.finish(committed)
    for outcome in done:
        out.print(_describe(outcome), markup=False)
    return done


def _commit_one(loader: FileLoader, file: LandedFile) -> LoadOutcome:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TextColumn("{task.fields[mbps]:>7.1f} MB/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(file.name, total=1.0, rows=0, mbps=0.0)
        started = time.perf_counter()
        rows = 0

        def advance(batch_rows: int, fraction: float) -> None:
            nonlocal rows
            rows += batch_rows
            elapsed = max(time.perf_counter() - started, 1e-6)
            done = max(fraction, 0.0)
            progress.update(task, completed=done, rows=rows, mbps=file.size * done / elapsed / _MB)

        return loader.commit(file, advance)


def _describe(outcome: LoadOutcome) -> str:
    file = outcome.file
    if outcome.status == "rejected":
        return f"rejected   {file.uri}: {outcome.reason}"
    if outcome.status == "unchanged":
        return f"unchanged  {file.uri}: {outcome.reason} (nothing loaded)"
    if outcome.status == "failed":
        return f"failed     {file.uri}: {outcome.reason}"
    record = outcome.record
    assert record is not None
    speed = file.size / max(outcome.seconds, 1e-6) / _MB
    period = f"{record.period} part {record.part}" if record.part else record.period
    replaced = f", replaces {record.replaces[:12]}… of period {period}" if record.replaces else ""
    return (
        f"loaded     {file.uri}: {record.rows:,} rows, {record.bad_rows:,} bad (quarantined) as "
        f"{file.source}/{file.entity} {period}{replaced}; "
        f"{file.size / _MB:,.1f} MB in {outcome.seconds:.1f} s ({speed:,.1f} MB/s)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def loader(ctx: typer.Context) -> None:
    """Run the file loader: load new files from the landing zone (exports.landing) until Ctrl-C."""
    from insightloop.cli.services import service_running
    from insightloop.exports.service import SERVICE, run

    config = state(ctx).config()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    with service_running(config, SERVICE):
        run(config, stop=stop)
