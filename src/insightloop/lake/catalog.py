"""Opening the Iceberg catalog chosen in config (SQLite + local files in the embedded shape)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError
from pyiceberg.typedef import Identifier
from sqlalchemy.exc import IntegrityError

from insightloop.config import Config

NAMESPACES = ("raw", "cleaned", "quarantine")


def lake_root(config: Config) -> Path:
    root = Path(config.lake.warehouse_path)
    return root if root.is_absolute() else config.path(config.lake.warehouse_path)


def open_catalog(config: Config) -> Catalog:
    """The lake's catalog, with its namespaces created when missing."""
    root = lake_root(config)
    root.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(
        "insightloop",
        uri=f"sqlite:///{root / 'catalog.db'}",
        warehouse=f"file://{root / 'warehouse'}",
    )
    existing = {ns[0] for ns in catalog.list_namespaces()}
    for namespace in NAMESPACES:
        if namespace not in existing:
            # Another process may create it between our list and create (pyiceberg reports
            # that race as the SQL store's IntegrityError rather than its own error).
            with contextlib.suppress(NamespaceAlreadyExistsError, IntegrityError):
                catalog.create_namespace(namespace)
    return catalog


def lake_tables(catalog: Catalog, namespaces: Sequence[str] = NAMESPACES) -> list[Identifier]:
    """The tables of the lake's namespaces (of those that exist), sorted."""
    found: list[Identifier] = []
    existing = {ns[0] for ns in catalog.list_namespaces()}
    for namespace in namespaces:
        if namespace in existing:
            found.extend(catalog.list_tables(namespace))
    return sorted(found)
