"""``insightloop contracts``: list, check (for CI) and infer event contracts (and, with
``infer --export FILE``, export contracts).

Exit codes: 0 fine, 1 a change that breaks the rules (``check``), 2 a bad contracts folder,
a bad samples file or a git problem, with the file named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from insightloop.contracts.errors import ContractError

contracts_app = typer.Typer(
    name="contracts",
    help="Event contracts (JSON Schema, SchemaVer): list them, check changes, infer new ones.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DirOption = Annotated[Path, typer.Option("--dir", "-d", help="The contracts folder.")]
BAD_CONTRACTS_EXIT = 2


def _fail(exc: ContractError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(BAD_CONTRACTS_EXIT)


@contracts_app.command("list")
def list_contracts(directory: DirOption = Path("contracts")) -> None:
    """Every contract and its versions (the latest last)."""
    from insightloop.contracts.registry import Registry

    try:
        registry = Registry.load(directory)
    except ContractError as exc:
        raise _fail(exc) from None
    names: dict[tuple[str, str], list[str]] = {}
    for contract in registry:
        names.setdefault((contract.kind, contract.name), []).append(str(contract.version))
    for (kind, name), versions in names.items():
        typer.echo(f"{kind:9s} {name:32s} {', '.join(versions)}")
    typer.echo(f"{len(registry)} contract version(s) in {directory}")


@contracts_app.command()
def check(
    base: Annotated[str, typer.Option("--base", help="The git revision to compare with.")] = "HEAD",
    directory: DirOption = Path("contracts"),
    every_version: Annotated[
        bool,
        typer.Option("--all-versions", help="Also check each published version against the one before it."),
    ] = False,
) -> None:
    """Fail (exit 1) on a contract edited in place, removed, or bumped less than its change needs."""
    from insightloop.contracts.check import check_contracts

    try:
        report = check_contracts(directory, base, every_version)
    except ContractError as exc:
        raise _fail(exc) from None
    for finding in report.findings:
        typer.echo(str(finding), err=not finding.ok)
    errors = len(report.errors)
    if errors:
        typer.echo(f"{errors} contract change(s) break the versioning rules (against {base})", err=True)
        raise typer.Exit(1)
    typer.echo(f"contracts in {directory}: no breaking change without its version bump (against {base})")


@contracts_app.command()
def infer(
    ctx: typer.Context,
    samples: Annotated[
        Path | None, typer.Argument(help="A JSON-lines file of Segment messages (or use --from-lake).")
    ] = None,
    event: Annotated[
        str | None, typer.Option("--event", help="Only this event (track event or page/screen name).")
    ] = None,
    enum_max: Annotated[
        int, typer.Option("--enum-max", help="Propose an enum for strings with at most this many values.")
    ] = 0,
    from_lake: Annotated[
        bool,
        typer.Option("--from-lake", help="Sample the newest messages in raw.sdk_events instead of a file."),
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", help="With --from-lake: at most this many messages.", min=1)
    ] = 10_000,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Propose an export contract from this export file (CSV, JSON lines or Parquet).",
        ),
    ] = None,
    entity: Annotated[
        str | None,
        typer.Option("--entity", help="With --export: the entity (default: the file's folder name)."),
    ] = None,
    primary_key: Annotated[
        list[str] | None,
        typer.Option("--primary-key", help="With --export: a primary key column (repeat for several)."),
    ] = None,
    updated_at: Annotated[
        str | None,
        typer.Option("--updated-at", help="With --export: the column whose latest value wins."),
    ] = None,
) -> None:
    """Print a proposed contract per event found in the samples (a file, or the lake), or with
    --export the export contract of a file, for review."""
    from insightloop.contracts.infer import infer_contracts, read_samples, to_text
    from insightloop.contracts.registry import snake_case

    if export is not None:
        if samples is not None or from_lake:
            typer.echo("error: --export takes no samples file and no --from-lake", err=True)
            raise typer.Exit(2)
        _infer_export(export, entity, primary_key, updated_at)
        return
    if entity is not None or primary_key or updated_at is not None:
        typer.echo("error: --entity, --primary-key and --updated-at go with --export", err=True)
        raise typer.Exit(2)
    if (samples is None) == (not from_lake):
        typer.echo("error: give a samples file or --from-lake (one of them)", err=True)
        raise typer.Exit(2)
    where = "raw.sdk_events" if from_lake else str(samples)
    try:
        if samples is not None:
            found = read_samples(samples)
        else:
            from insightloop.cli.context import config_errors_exit, state
            from insightloop.contracts.lake_samples import lake_samples

            with config_errors_exit():
                found = lake_samples(state(ctx).config(), event, limit)
    except ContractError as exc:
        raise _fail(exc) from None
    proposals = infer_contracts(found, enum_max=enum_max)
    if event is not None:
        wanted = snake_case(event)
        proposals = {key: schema for key, schema in proposals.items() if key[1] == wanted}
    if not proposals:
        typer.echo(f"error: no {'event ' + repr(event) if event else 'events'} in {where}", err=True)
        raise typer.Exit(1)
    for (kind, name), schema in proposals.items():
        typer.echo(f"// {kind}/{name}/1-0-0.json")
        typer.echo(to_text(schema), nl=False)
    if found.skipped:
        typer.echo(f"({found.skipped} line(s) or message(s) skipped: not JSON or no contract kind)", err=True)


def _infer_export(
    path: Path, entity: str | None, primary_key: list[str] | None, updated_at: str | None
) -> None:
    """Print ``contracts/export/<entity>/1-0-0.json`` proposed from ``path``; exit 1 when the
    file cannot be read (or lacks a named column)."""
    import duckdb

    from insightloop.contracts.infer import to_text
    from insightloop.contracts.registry import snake_case
    from insightloop.exports.infer import InferError, propose
    from insightloop.exports.landing import file_format, local_files

    if not path.is_file():
        typer.echo(f"error: {path}: no such file", err=True)
        raise typer.Exit(1)
    if file_format(path.name)[0] is None:
        typer.echo(
            f"error: {path}: not an export file by its name (.csv, .tsv, .txt, .jsonl, .ndjson, .json "
            "or .parquet, optionally .gz or .zst)",
            err=True,
        )
        raise typer.Exit(1)
    [file] = local_files(path, None, entity)
    name = snake_case(entity or file.entity)
    try:
        schema = propose(file, name, primary_key, updated_at)
    except InferError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (duckdb.Error, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        typer.echo(f"error: {path} cannot be read: {first}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"// contracts/export/{name}/1-0-0.json (review before committing)")
    typer.echo(to_text(schema), nl=False)
