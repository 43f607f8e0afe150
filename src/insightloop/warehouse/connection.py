"""Opening the warehouse: an in-memory DuckDB connection that sees every lake table as a view.

Each table is pinned to its current snapshot when the connection opens, so everything run on
one connection reads one consistent state per table. Open a new warehouse to see newer data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType

import duckdb
from pyiceberg.catalog import Catalog

from insightloop.config import Config
from insightloop.lake.catalog import NAMESPACES, lake_root, open_catalog
from insightloop.warehouse.pinning import PinnedTable, pin
from insightloop.warehouse.views import create_view, quote_ident

_LAKE_NAME = re.compile(
    r'(?<![\w."])"?(' + "|".join(NAMESPACES) + r')"?\s*\.\s*"?([A-Za-z_][\w$]*)',
    re.IGNORECASE,
)


def tables_in(sql: str) -> set[str] | None:
    """The lake tables (``namespace.name``, lower case) that ``sql`` seems to mention, or None
    when it names none (``SHOW ALL TABLES``, ``information_schema`` …): then every table is needed.

    A textual scan, not a parse: a false hit only costs one extra view."""
    found = {f"{ns.lower()}.{name.lower()}" for ns, name in _LAKE_NAME.findall(sql)}
    return found or None


@dataclass
class Warehouse:
    """A DuckDB connection with the lake's views, and the snapshot each view is pinned to."""

    con: duckdb.DuckDBPyConnection
    pins: dict[str, PinnedTable] = field(default_factory=dict)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def lake_exists(config: Config) -> bool:
    """Whether anything has created the lake yet (read-only commands must not create it)."""
    return (lake_root(config) / "catalog.db").is_file()


def open_warehouse(config: Config, tables: Iterable[str] | None = None) -> Warehouse:
    """A warehouse over the configured lake; only ``tables`` (``namespace.name``) when given.

    An empty or missing lake gives empty schemas ``raw``, ``cleaned``, ``quarantine``."""
    if not lake_exists(config):
        return attach_catalog(None)
    return attach_catalog(open_catalog(config), tables)


def attach_catalog(catalog: Catalog | None, tables: Iterable[str] | None = None) -> Warehouse:
    """A warehouse over ``catalog``'s tables (all of them, or only ``tables``)."""
    wanted = None if tables is None else {name.lower() for name in tables}
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    warehouse = Warehouse(con)
    for namespace in NAMESPACES:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(namespace)}")
    if catalog is None:
        return warehouse
    try:
        for namespace in NAMESPACES:
            for identifier in catalog.list_tables(namespace):
                qualified = ".".join(identifier[-2:])
                if wanted is not None and qualified.lower() not in wanted:
                    continue
                table = catalog.load_table(identifier)
                pinned = pin(table)
                rows = table.scan(snapshot_id=pinned.snapshot_id).to_arrow() if pinned.has_deletes else None
                create_view(con, pinned, rows)
                warehouse.pins[pinned.qualified_name] = pinned
    except BaseException:
        con.close()
        raise
    return warehouse
