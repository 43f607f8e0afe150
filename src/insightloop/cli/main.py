"""The ``insightloop`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from insightloop.cli.cdc import cdc_app
from insightloop.cli.cdc_processor import cdc_processor
from insightloop.cli.context import CliState, config_errors_exit, fail, state
from insightloop.cli.contracts import contracts_app
from insightloop.cli.exports import load, loader
from insightloop.cli.output import OutputFormat
from insightloop.cli.quarantine import quarantine_app

app = typer.Typer(
    name="insightloop",
    help="InsightLoop's data pipeline: collect Segment events, process them into the lake, query them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(contracts_app, name="contracts")
app.command("cdc-processor")(cdc_processor)
app.command("load")(load)
app.command("loader")(loader)
app.add_typer(cdc_app, name="cdc")
app.add_typer(quarantine_app, name="quarantine")


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="INSIGHTLOOP_CONFIG",
            help="TOML config file (see config/reference.toml); env INSIGHTLOOP__<SECTION>__<KEY> overrides.",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = CliState(config)


@app.command()
def collector(ctx: typer.Context) -> None:
    """Run the collector (Segment HTTP API) in the foreground."""
    from insightloop.cli.services import run_collector

    run_collector(state(ctx).config())


@app.command()
def processor(ctx: typer.Context) -> None:
    """Run the stream processor (log → raw; also raw → cleaned with processor.stage2 = "inline")."""
    from insightloop.cli.services import run_processor

    run_processor(state(ctx).config())


@app.command()
def cleaner(ctx: typer.Context) -> None:
    """Run stage 2 (raw → cleaned, quarantine) in the foreground (processor.stage2 = "separate")."""
    from insightloop.cli.services import run_cleaner

    run_cleaner(state(ctx).config())


@app.command()
def up(ctx: typer.Context) -> None:
    """Run the pipeline's services (collector, processor, cleaner; CDC reader and processor when
    cdc.enabled, with the demo application database unless cdc.dsn is set), restarting any
    that crashes, until Ctrl-C."""
    from insightloop.cli.services import demo_sources, pipeline_services
    from insightloop.cli.supervisor import supervise
    from insightloop.cli.up import collector_url, console_sink, port_in_use, service_children
    from insightloop.errors import InsightloopError

    cli = state(ctx)
    config = cli.config()
    if port_in_use(config.collector.host, config.collector.port):
        raise fail(f"{collector_url(config)} is already in use (another collector running?)")
    console = Console()
    console.print(
        f"collector on {collector_url(config)}, data in {config.data_dir}; Ctrl-C stops", highlight=False
    )
    children = service_children(cli.config_path, names=pipeline_services(config))
    try:
        with config_errors_exit(), demo_sources(config) as dsn:
            if dsn is not None:
                console.print(f"demo application database (the CDC source): {dsn}", highlight=False)
            code = supervise(children, console_sink(console))
    except InsightloopError as exc:
        raise fail(f"demo application database: {exc}") from None
    raise typer.Exit(code)


@app.command()
def query(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help="SQL over raw.*, cleaned.*, quarantine.* (DuckDB dialect).")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Rows shown by --format table.")] = 1000,
) -> None:
    """Query the lake through the warehouse (each table pinned to its current snapshot)."""
    from insightloop.cli.query import QueryError, run_query

    config = state(ctx).config()
    try:
        with config_errors_exit():
            run_query(config, sql, fmt, max_rows)
    except QueryError as exc:
        raise fail(str(exc)) from None


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for programs.")] = False,
) -> None:
    """Tables (rows, freshness, throughput), log lag per shard, and whether services are up."""
    from insightloop.cli.status import collect
    from insightloop.cli.status_view import render, to_json

    report = collect(state(ctx).config())
    if as_json:
        typer.echo(to_json(report))
    else:
        render(report, Console())


@app.command()
def demo(
    ctx: typer.Context,
    duration: Annotated[
        float | None, typer.Option(help="Seconds of traffic; until Ctrl-C when not given.", min=1)
    ] = None,
    rate: Annotated[float, typer.Option(help="Events per second to send.", min=1)] = 2000.0,
    seed: Annotated[int, typer.Option(help="Seed of the traffic and workload generators.")] = 7,
    cdc_rate: Annotated[
        float,
        typer.Option(help="Changes per second the workload makes in the demo application database.", min=1),
    ] = 200.0,
) -> None:
    """Run the pipeline with realistic Segment traffic and, with cdc.enabled, an application
    database changing under CDC; then show what landed where and how fast."""
    from insightloop.cli.demo import run_demo

    cli = state(ctx)
    raise typer.Exit(run_demo(cli.config(), cli.config_path, duration, rate, seed, cdc_rate))
