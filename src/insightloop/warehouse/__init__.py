"""The warehouse: DuckDB reading the lake's Iceberg tables as ``raw.*``, ``cleaned.*``, ``quarantine.*``.

Views read the Parquet files of one pinned snapshot per table (listed by pyiceberg), not
through DuckDB's iceberg extension, which downloads at run time and fails offline.
"""

from insightloop.warehouse.connection import Warehouse, attach_catalog, lake_exists, open_warehouse, tables_in
from insightloop.warehouse.pinning import PinnedTable, pin

__all__ = ["PinnedTable", "Warehouse", "attach_catalog", "lake_exists", "open_warehouse", "pin", "tables_in"]
