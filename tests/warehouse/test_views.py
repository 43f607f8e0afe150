"""The warehouse sees lake tables as DuckDB views over one pinned snapshot each."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType, TimestamptzType

from insightloop.config import Config
from insightloop.warehouse import attach_catalog, open_warehouse, tables_in

SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=False),
    NestedField(2, "event", StringType(), required=False),
    NestedField(3, "received_at", TimestamptzType(), required=False),
)


def append(table: Table, rows: list[dict[str, object]]) -> None:
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


def at(second: int) -> dt.datetime:
    return dt.datetime(2026, 11, 1, 12, 0, second, tzinfo=dt.UTC)


@pytest.fixture
def tracks(catalog: Catalog) -> Table:
    table = catalog.create_table("cleaned.tracks", schema=SCHEMA)
    append(table, [{"id": "m1", "event": "Report Created", "received_at": at(1)}])
    append(table, [{"id": "m2", "event": "Invite Sent", "received_at": at(2)}])
    return table


def test_rows_of_every_snapshot_with_an_evolved_schema(
    catalog: Catalog, config: Config, tracks: Table
) -> None:
    with tracks.update_schema() as update:
        update.add_column("plan", StringType())
        update.rename_column("event", "event_name")
    tracks = catalog.load_table("cleaned.tracks")
    append(tracks, [{"id": "m3", "event_name": "Export Downloaded", "received_at": at(3), "plan": "team"}])

    with open_warehouse(config) as warehouse:
        rows = warehouse.con.execute("SELECT id, event_name, plan FROM cleaned.tracks ORDER BY id").fetchall()

    assert rows == [
        ("m1", "Report Created", None),
        ("m2", "Invite Sent", None),
        ("m3", "Export Downloaded", "team"),
    ]


def test_column_added_after_the_last_commit_reads_null(
    catalog: Catalog, config: Config, tracks: Table
) -> None:
    with tracks.update_schema() as update:
        update.add_column("attempts", LongType())

    with open_warehouse(config) as warehouse:
        rows = warehouse.con.execute("SELECT id, attempts FROM cleaned.tracks ORDER BY id").fetchall()
        kind = warehouse.con.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = 'cleaned' AND table_name = 'tracks' AND column_name = 'attempts'"
        ).fetchone()

    assert rows == [("m1", None), ("m2", None)]
    assert kind == ("BIGINT",)


def test_a_query_stays_on_its_pinned_snapshot_while_new_commits_land(
    catalog: Catalog, config: Config, tracks: Table
) -> None:
    with open_warehouse(config) as warehouse:
        before = warehouse.con.execute("SELECT count(*) FROM cleaned.tracks").fetchone()
        append(tracks, [{"id": "m9", "event": "Invite Sent", "received_at": at(9)}])  # the processor commits
        during = warehouse.con.execute("SELECT count(*), max(id) FROM cleaned.tracks").fetchone()
    with open_warehouse(config) as fresh:
        after = fresh.con.execute("SELECT count(*), max(id) FROM cleaned.tracks").fetchone()

    assert before == (2,)
    assert during == (2, "m2")
    assert after == (3, "m9")


def test_empty_table_has_a_typed_view(catalog: Catalog, config: Config) -> None:
    catalog.create_table("quarantine.sdk_events", schema=SCHEMA)

    with open_warehouse(config) as warehouse:
        count = warehouse.con.execute("SELECT count(*) FROM quarantine.sdk_events").fetchone()
        columns = warehouse.con.execute("DESCRIBE quarantine.sdk_events").fetchall()

    assert count == (0,)
    assert [(c[0], c[1]) for c in columns] == [
        ("id", "VARCHAR"),
        ("event", "VARCHAR"),
        ("received_at", "TIMESTAMP WITH TIME ZONE"),
    ]


def test_only_the_tables_asked_for_are_pinned(catalog: Catalog, tracks: Table) -> None:
    catalog.create_table("raw.sdk_events", schema=SCHEMA)

    with attach_catalog(catalog, ["cleaned.tracks"]) as warehouse:
        assert set(warehouse.pins) == {"cleaned.tracks"}
        assert warehouse.con.execute("SELECT count(*) FROM cleaned.tracks").fetchone() == (2,)


def test_a_missing_lake_gives_empty_schemas_and_creates_nothing(config: Config) -> None:
    with open_warehouse(config) as warehouse:
        schemas = {
            row[0]
            for row in warehouse.con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()
        }
    assert {"raw", "cleaned", "quarantine"} <= schemas
    assert not config.path().exists()


def test_times_are_shown_in_utc(config: Config, tracks: Table) -> None:
    with open_warehouse(config) as warehouse:
        text = warehouse.con.execute(
            "SELECT CAST(min(received_at) AS VARCHAR) FROM cleaned.tracks"
        ).fetchone()
    assert text == ("2026-11-01 12:00:01+00",)


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        (
            "SELECT * FROM cleaned.tracks t JOIN raw.sdk_events r USING (id)",
            {"cleaned.tracks", "raw.sdk_events"},
        ),
        ('select count(*) from "quarantine"."sdk_events"', {"quarantine.sdk_events"}),
        ("SHOW ALL TABLES", None),
        ("SELECT 'cleaned' AS x", None),
    ],
)
def test_tables_mentioned_by_sql(sql: str, tables: set[str] | None) -> None:
    assert tables_in(sql) == tables
