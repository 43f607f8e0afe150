"""``insightloop cdc …``: the CDC reader, its status, and the demo application database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import orjson
import typer

from insightloop.cli.context import config_errors_exit, fail, state
from insightloop.errors import InsightloopError

cdc_app = typer.Typer(help="Change data capture from the application PostgreSQL.", no_args_is_help=True)
db_app = typer.Typer(help="The demo application database (embedded PostgreSQL under <data_dir>/appdb).")
cdc_app.add_typer(db_app, name="db", no_args_is_help=True)


@cdc_app.command()
def reader(ctx: typer.Context) -> None:
    """Run the CDC reader in the foreground: snapshot, then stream changes into the CDC log."""
    from insightloop.cdc.service import run_reader
    from insightloop.cli.services import service_running

    config = state(ctx).config()
    with service_running(config, "cdc-reader"):
        run_reader(config)


@cdc_app.command()
def status(ctx: typer.Context) -> None:
    """The reader's confirmed LSN, snapshot progress, and the slot's lag and retained WAL (JSON)."""
    from insightloop.cdc.status import cdc_status

    typer.echo(orjson.dumps(cdc_status(state(ctx).config()), option=orjson.OPT_INDENT_2).decode())


@db_app.command()
def start(ctx: typer.Context) -> None:
    """Start the demo database (reused if running) and print its DSN."""
    from insightloop.cdc.appdb.server import ensure_started

    config = state(ctx).config()
    if config.cdc.dsn:
        raise fail("cdc.dsn is set: the demo database is not used", 2)
    with _errors():
        typer.echo(ensure_started(config))


@db_app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the demo database."""
    from insightloop.cdc.appdb.server import appdb_dir
    from insightloop.cdc.appdb.server import stop as stop_server

    with _errors():
        stopped = stop_server(appdb_dir(state(ctx).config()))
    typer.echo("stopped" if stopped else "not running")


@db_app.command()
def workload(
    ctx: typer.Context,
    rate: Annotated[
        float | None, typer.Option(help="Changes per second; as fast as possible if not given.")
    ] = 200.0,
    changes: Annotated[int | None, typer.Option(help="Stop after this many changes.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 7,
    schema_change_at: Annotated[
        int | None,
        typer.Option(help="Change the schema (ADD COLUMN, then int → bigint) after this many changes."),
    ] = 2000,
) -> None:
    """Run the workload generator against the application database (cdc.dsn, or the demo one)."""
    import psycopg

    from insightloop.cdc.appdb.workload import Workload
    from insightloop.cdc.service import source_dsn
    from insightloop.processor.runner import stop_on_signals

    config = state(ctx).config()
    stop_event = threading.Event()
    stop_on_signals(stop_event)
    with _errors():
        dsn = source_dsn(config)
        try:
            with psycopg.connect(dsn) as conn:
                stats = Workload(conn, seed, schema_change_at=schema_change_at).run(
                    rate=rate, changes=changes, duration=duration, stop=stop_event
                )
        except psycopg.OperationalError as exc:
            raise fail(f"application database: {str(exc).strip()}") from None
    typer.echo(
        f"{stats.transactions} transactions, {stats.changes} changes "
        f"({stats.large_transactions} large, {stats.schema_changes} schema changes)"
    )


@contextmanager
def _errors() -> Iterator[None]:
    """Our errors as one line on stderr and a non-zero exit (2 for configuration)."""
    try:
        with config_errors_exit():
            yield
    except InsightloopError as exc:
        raise fail(str(exc)) from None
