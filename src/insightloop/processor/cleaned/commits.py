"""The stage's Iceberg tables: created on first use, and written one catalog commit each.

A commit adds the batch's new columns, promotes the columns that must widen in place
(Iceberg's int → long: old files read as long, the column keeps its field id), and adds its
rows, in one transaction (readers never see a column without its rows, or rows of an
unknown column or of a type the column does not have yet) and records in its snapshot
``watermarks.RAW_SEQ``: the highest raw ``ingest_seq`` of the batch, so a replay skips, per
table, the rows that table already holds. pyiceberg retries a commit that lost a race
(e.g. with compaction) on the refreshed table.

pyiceberg 0.12's ``Transaction.table_metadata`` deep-copies the whole table metadata (every
snapshot) on each access, ~18 times per append: half the cost of a commit on a young table,
and growing with its history. ``_Transaction`` computes it once per state of the
transaction instead (the models are frozen, so sharing one copy is safe).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import BooleanExpression
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.update import TableUpdate, update_table_metadata

from insightloop.lake.maintenance import METADATA_PROPERTIES
from insightloop.lake.watermarks import RAW_SEQ, committed_property
from insightloop.processor.cleaned.coltypes import ICEBERG_TYPES, Kind, kind_of_iceberg
from insightloop.processor.cleaned.reconcile import Column
from insightloop.processor.cleaned.tables import TableSpec


class _Transaction(Transaction):
    """A pyiceberg transaction whose ``table_metadata`` is computed once per state."""

    _cache: tuple[TableMetadata, tuple[TableUpdate, ...], TableMetadata] | None = None

    @property
    def table_metadata(self) -> TableMetadata:
        base, updates = self._table.metadata, self._updates
        cache = self._cache
        if cache is None or cache[0] is not base or cache[1] is not updates:
            cache = self._cache = (base, updates, update_table_metadata(base, updates))
        return cache[2]


class Tables:
    """Handles on the stage's tables, with the raw sequence each one holds."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._tables: dict[str, Table] = {}
        self._seqs: dict[str, int] = {}
        self._kinds: dict[str, dict[str, Kind | None]] = {}

    def property(self, spec: TableSpec, name: str) -> str | None:
        """A table property (None when the table or the property does not exist)."""
        if not self.exists(spec):
            return None
        return self.table(spec).properties.get(name)

    def forget(self) -> None:
        """Drop every cached handle: the next use reloads from the catalog (after a failure,
        when what was committed is not known)."""
        self._tables.clear()
        self._seqs.clear()
        self._kinds.clear()

    def table(self, spec: TableSpec) -> Table:
        table = self._tables.get(spec.identifier)
        if table is None:
            table = self._load_or_create(spec)
            self._tables[spec.identifier] = table
        return table

    def _load_or_create(self, spec: TableSpec) -> Table:
        try:
            return self._catalog.load_table(spec.identifier)
        except NoSuchTableError:
            pass
        try:
            return self._catalog.create_table(
                spec.identifier,
                schema=spec.schema(),
                partition_spec=spec.partition_spec(),
                properties=METADATA_PROPERTIES,
            )
        except TableAlreadyExistsError:
            return self._catalog.load_table(spec.identifier)

    def exists(self, spec: TableSpec) -> bool:
        return spec.identifier in self._tables or self._catalog.table_exists(spec.identifier)

    def seq(self, spec: TableSpec) -> int:
        """The highest raw ``ingest_seq`` the table holds (0: none)."""
        seq = self._seqs.get(spec.identifier)
        if seq is None:
            if spec.identifier not in self._tables and not self._catalog.table_exists(spec.identifier):
                return 0
            value = committed_property(self.table(spec), RAW_SEQ)
            seq = int(value) if value is not None else 0
            self._seqs[spec.identifier] = seq
        return seq

    def kinds(self, spec: TableSpec) -> dict[str, Kind | None]:
        """The table's columns: name → kind (None for the fixed columns of other types)."""
        kinds = self._kinds.get(spec.identifier)
        if kinds is None:
            if spec.identifier not in self._tables and not self._catalog.table_exists(spec.identifier):
                return {name: kind_of_iceberg(iceberg_type) for name, iceberg_type, _ in spec.columns}
            kinds = {f.name: kind_of_iceberg(f.field_type) for f in self.table(spec).schema().fields}
            self._kinds[spec.identifier] = kinds
        return kinds

    def write(
        self,
        spec: TableSpec,
        data: pa.Table,
        new_columns: Sequence[Column],
        seq: int,
        replace: BooleanExpression | None = None,
        *,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """Define ``new_columns`` and add ``data`` (replacing the rows matching ``replace``) in
        one commit recording ``seq`` and, in the same commit, the table ``properties`` given.

        A column of ``new_columns`` the table lacks is added; one it has is promoted in place
        to the column's kind (only as Iceberg allows: ``coltypes.PROMOTIONS``, else
        pyiceberg's ``ValidationError``)."""
        table = self.table(spec)
        table_properties = dict(properties or {})
        properties = {RAW_SEQ: str(seq)}
        with _Transaction(table) as transaction:
            if table_properties:
                transaction.set_properties(table_properties)
            if new_columns:
                _define(transaction, new_columns)
            if replace is None:
                transaction.append(data, snapshot_properties=properties)
            else:
                transaction.overwrite(data, overwrite_filter=replace, snapshot_properties=properties)
        self._seqs[spec.identifier] = seq
        kinds = self._kinds.get(spec.identifier)
        if kinds is not None:
            kinds.update((column.name, column.kind) for column in new_columns)


def _define(transaction: Transaction, columns: Sequence[Column]) -> None:
    """Add the ``columns`` the table lacks, promote those it has (one schema update)."""
    existing = {field.name for field in transaction.table_metadata.schema().fields}
    with transaction.update_schema() as update:
        for column in columns:
            if column.name in existing:
                update.update_column(column.name, ICEBERG_TYPES[column.kind])
            else:
                update.add_column(column.name, ICEBERG_TYPES[column.kind], doc=column.doc)
