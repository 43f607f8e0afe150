"""Compaction and snapshot expiry of the CDC processor's own tables only: ``raw.cdc_changes``,
``cleaned.app_*`` and ``quarantine.cdc_changes`` (``owned``). The shared ``Housekeeping``
and ``Compactor`` work per namespace; these narrow them to our tables, since each table is
maintained by the one process that commits to it."""

from __future__ import annotations

from pyiceberg.catalog import Catalog
from pyiceberg.typedef import Identifier

from insightloop.lake.catalog import NAMESPACES, lake_tables
from insightloop.lake.maintenance import SnapshotRetention, ensure_table_properties, expire_snapshots
from insightloop.processor.cdc.naming import CLEANED, PREFIX
from insightloop.processor.cdc.quarantine import CDC_QUARANTINE
from insightloop.processor.cdc.raw_rows import CDC_CHANGES
from insightloop.processor.compaction import Compactor
from insightloop.processor.housekeeping import Housekeeping
from insightloop.processor.metrics import ProcessorMetrics


def owned(identifier: Identifier | str) -> bool:
    name = identifier if isinstance(identifier, str) else ".".join(identifier)
    namespace, _, table = name.partition(".")
    return name in (CDC_CHANGES, CDC_QUARANTINE) or (namespace == CLEANED and table.startswith(PREFIX))


def owned_tables(catalog: Catalog) -> list[Identifier]:
    return [identifier for identifier in lake_tables(catalog, NAMESPACES) if owned(identifier)]


class OwnedCompactor(Compactor):
    def tables(self) -> list[Identifier]:
        return owned_tables(self._catalog)


class OwnedHousekeeping(Housekeeping):
    """``Housekeeping`` whose snapshot expiry visits ``owned_tables`` only (pair it with an
    ``OwnedCompactor``)."""

    def __init__(
        self,
        catalog: Catalog,
        compactor: OwnedCompactor | None,
        retention: SnapshotRetention | None,
        metrics: ProcessorMetrics,
    ) -> None:
        super().__init__(catalog, compactor, retention, NAMESPACES, metrics)

    def expire_snapshots(self) -> None:
        assert self.retention is not None, "expire_snapshots() without a retention"
        self._last_maintenance = self._clock()
        for identifier in owned_tables(self._catalog):
            table = self._catalog.load_table(identifier)
            ensure_table_properties(table)
            expired = expire_snapshots(table, self.retention)
            self._metrics.snapshots_expired.labels(".".join(identifier)).inc(expired)
