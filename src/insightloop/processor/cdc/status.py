"""``cdc_tables_status``: per captured table, what ``insightloop status`` shows: live rows,
tombstones, the last LSN applied and the last change's commit time, history rows, and the
raw sequence the table includes. Reads the lake only (no lock, any process)."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog

from insightloop.config import Config
from insightloop.lake.catalog import lake_tables, open_catalog
from insightloop.lake.ownership import CDC_PROCESSOR, written_by
from insightloop.processor.cdc import naming, store


class CdcTableStatus(msgspec.Struct, frozen=True):
    table: str
    rows_live: int
    rows_deleted: int
    last_lsn: int | None
    last_change_at: datetime | None
    history_rows: int
    raw_seq: int


def cdc_tables_status(config: Config, catalog: Catalog | None = None) -> list[CdcTableStatus]:
    """Every ``cleaned.app_<table>`` current-state table, sorted by name."""
    catalog = catalog or open_catalog(config)
    found: list[CdcTableStatus] = []
    owned = written_by(CDC_PROCESSOR)
    for identifier in filter(owned, lake_tables(catalog)):
        name = ".".join(identifier)
        if identifier[0] != naming.CLEANED or name.endswith(naming.HISTORY_SUFFIX):
            continue
        table = catalog.load_table(identifier)
        data = table.scan(selected_fields=("_lsn", "_changed_at", "_deleted")).to_arrow()
        deleted = int(pc.sum(data.column("_deleted").cast("int64")).as_py() or 0)
        history = store.load(catalog, name + naming.HISTORY_SUFFIX)
        history_rows = 0
        if history is not None and (snapshot := history.metadata.current_snapshot()) is not None:
            summary = snapshot.summary.additional_properties if snapshot.summary is not None else {}
            history_rows = int(summary.get("total-records", 0))
        found.append(
            CdcTableStatus(
                table=name,
                rows_live=data.num_rows - deleted,
                rows_deleted=deleted,
                last_lsn=pc.max(data.column("_lsn")).as_py(),
                last_change_at=pc.max(data.column("_changed_at")).as_py(),
                history_rows=history_rows,
                raw_seq=store.table_seq(table),
            )
        )
    return found
