"""The demo's second source: the application database's workload, how far the CDC pipeline
is behind it, and the final account of what the lake holds against the source.

- ``WorkloadRun`` drives ``cdc.appdb.workload.Workload`` in a thread at a rate in changes/s,
  with the schema change part-way.
- ``behind(config, lsn)`` says what still stands between the source at ``lsn`` and the lake:
  the reader's confirmed LSN, the CDC processor's log position, its stage 2's watermark.
- ``LagTracker`` times source WAL positions until the lake has applied past them.
- ``summarize_cdc`` counts rows in the source database and live rows in
  ``cleaned.app_<table>``: the counts come from both databases, never from the generator.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from pyiceberg.catalog import Catalog
from pyiceberg.conversions import from_bytes
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table
from pyiceberg.types import PrimitiveType

from insightloop.cdc.appdb.schema import TABLES
from insightloop.cdc.appdb.workload import Workload, WorkloadStats
from insightloop.cdc.state import format_lsn, load_state, parse_lsn, state_path
from insightloop.config import Config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.watermarks import LOG_POSITIONS, RAW_SEQ, committed_property
from insightloop.processor.cdc import naming
from insightloop.processor.cdc.raw_rows import CDC_CHANGES, SNAPSHOT_DONE_STREAM
from insightloop.processor.cdc.stage import stored_watermark
from insightloop.processor.cdc.status import cdc_tables_status
from insightloop.processor.raw_rows import REJECTED_STREAM
from insightloop.warehouse import attach_catalog, lake_exists

#: What the workload's schema change (``cdc.appdb.schema.SCHEMA_CHANGES``) does, as the
#: demo checks it on both sides: (table, column, source type after the change).
SCHEMA_CHECKS = (("accounts", "industry", "text"), ("invoices", "amount_cents", "bigint"))
#: Iceberg types the checked columns must have in the lake.
LAKE_TYPES = {"text": "string", "bigint": "long"}


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class WorkloadRun:
    """The workload generator against ``dsn`` in a thread, until ``stop()`` or ``duration``."""

    def __init__(
        self, dsn: str, rate: float, duration: float | None, seed: int, schema_change_at: int
    ) -> None:
        self.dsn = dsn
        self.rate = rate
        self.duration = duration
        self.seed = seed
        self.schema_change_at = schema_change_at
        self.stats = WorkloadStats()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-workload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.dsn) as conn:
                workload = Workload(conn, self.seed, schema_change_at=self.schema_change_at)
                self.stats = workload.stats
                workload.run(rate=self.rate, duration=self.duration, stop=self._stop)
        except Exception as exc:  # shown in the panel and the summary; the demo goes on
            self.error = first_line(exc)


def source_lsn(dsn: str) -> int:
    """The source's current WAL position."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return parse_lsn(str(row[0]))


def behind(config: Config, lsn: int, catalog: Catalog | None = None) -> str | None:
    """What the lake still lacks of the source's changes up to ``lsn``; None when it has them
    all: the reader has confirmed ``lsn`` (so every change before it is in the CDC log), the
    CDC processor has committed the whole log to ``raw.cdc_changes``, and its stage 2 has
    applied every raw row to ``cleaned.app_*``."""
    state = load_state(state_path(config))
    if state is None or not state.snapshot.complete:
        return "the CDC reader has not finished its snapshot"
    if state.confirmed_lsn < lsn:
        return f"the CDC reader has confirmed {format_lsn(state.confirmed_lsn)} of {format_lsn(lsn)}"
    if not lake_exists(config):
        return f"{CDC_CHANGES} does not exist yet"
    try:
        raw = (catalog or open_catalog(config)).load_table(CDC_CHANGES)
    except NoSuchTableError:
        return f"{CDC_CHANGES} does not exist yet"
    from insightloop.log.factory import open_cdc_log

    positions = json.loads(committed_property(raw, LOG_POSITIONS) or "{}")
    log = open_cdc_log(config)
    try:
        for shard in log.shards():
            done = positions.get(shard)
            lag = log.lag(shard, None if done is None else int(done))
            if lag.records:
                return f"the CDC processor is {lag.records:,} log records behind"
    finally:
        log.close()
    raw_seq = int(committed_property(raw, RAW_SEQ) or 0)
    applied = stored_watermark(config)
    if applied < raw_seq:
        return f"the CDC processor's stage 2 has applied raw commit {applied} of {raw_seq}"
    return None


def applied_lsn(catalog: Catalog) -> int | None:
    """The highest ``_lsn`` in any ``cleaned.app_<table>``, from the data files' upper bounds
    (no data is read)."""
    newest: int | None = None
    for table in _state_tables(catalog):
        lsn_field = table.schema().find_field("_lsn")
        if table.current_snapshot() is None or not isinstance(lsn_field.field_type, PrimitiveType):
            continue
        for task in table.scan().plan_files():
            bound = (task.file.upper_bounds or {}).get(lsn_field.field_id)
            if bound is not None:
                value = int(from_bytes(lsn_field.field_type, bound))
                newest = value if newest is None else max(newest, value)
    return newest


def _state_tables(catalog: Catalog) -> Iterable[Table]:
    for identifier in catalog.list_tables(naming.CLEANED):
        name = identifier[-1]
        if name.startswith(naming.PREFIX) and not name.endswith(naming.HISTORY_SUFFIX):
            yield catalog.load_table(identifier)


class LagTracker:
    """Source WAL positions, noted while the workload runs, until the lake has applied a
    change past them: the time from a change's commit to it being queryable, give or take
    one poll."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, int]] = []
        self.lags: list[float] = []

    def note(self, lsn: int, at: float) -> None:
        self.pending.append((at, lsn))

    def applied(self, lsn: int | None, now: float) -> None:
        if lsn is None:
            return
        still = []
        for at, mark in self.pending:
            if mark <= lsn:
                self.lags.append(max(now - at, 0.0))
            else:
                still.append((at, mark))
        self.pending = still

    def drained(self, now: float) -> None:
        """The lake holds every change up to the end of the workload: every mark is reached."""
        self.applied(max((mark for _, mark in self.pending), default=None), now)


@dataclass(frozen=True)
class AppTable:
    """One source table against its current-state table in the lake."""

    source: str
    lake: str
    source_rows: int
    #: Rows ``WHERE NOT _deleted``; None when the lake has no such table.
    live_rows: int | None
    deleted_rows: int = 0
    history_rows: int = 0

    @property
    def equal(self) -> bool:
        return self.live_rows == self.source_rows


@dataclass(frozen=True)
class SchemaCheck:
    """A column the schema change added or widened: its type in the source and in the lake."""

    source: str
    lake: str
    #: information_schema's data_type in the source; None: no such column (not reached).
    source_type: str | None
    #: The Iceberg type in the lake; None: no such column.
    lake_type: str | None
    expected: str

    @property
    def reached(self) -> bool:
        return self.source_type == self.expected

    @property
    def seen(self) -> bool:
        return self.reached and self.lake_type == LAKE_TYPES.get(self.expected)


@dataclass
class CdcSummary:
    tables: list[AppTable] = field(default_factory=list)
    #: Changes in ``raw.cdc_changes`` by Debezium op (r: snapshot read, c, u, d, t).
    captured: dict[str, int] = field(default_factory=dict)
    schema: list[SchemaCheck] = field(default_factory=list)
    error: str | None = None

    @property
    def all_equal(self) -> bool:
        return bool(self.tables) and all(t.equal for t in self.tables)


def summarize_cdc(config: Config, dsn: str) -> CdcSummary:
    """Rows per captured table in the source and in the lake, the changes captured, and the
    schema change on both sides."""
    summary = CdcSummary()
    try:
        source_counts, source_types = _source(dsn, config.cdc.publication)
    except psycopg.Error as exc:
        summary.error = f"source database: {first_line(exc)}"
        return summary
    catalog = open_catalog(config) if lake_exists(config) else None
    lake = {s.table: s for s in cdc_tables_status(config, catalog)} if catalog is not None else {}
    for table, rows in source_counts.items():
        name = naming.state_identifier(table)
        found = lake.get(name)
        summary.tables.append(
            AppTable(
                table,
                name,
                rows,
                None if found is None else found.rows_live,
                0 if found is None else found.rows_deleted,
                0 if found is None else found.history_rows,
            )
        )
    if catalog is not None:
        summary.captured = _captured(catalog)
        for table, column, expected in SCHEMA_CHECKS:
            name = naming.state_identifier(f"public.{table}")
            summary.schema.append(
                SchemaCheck(
                    f"{table}.{column}",
                    f"{name}.{column}",
                    source_types.get((table, column)),
                    _lake_type(catalog, name, column),
                    expected,
                )
            )
    return summary


def _source(dsn: str, publication: str) -> tuple[dict[str, int], dict[tuple[str, str], str]]:
    """Rows per published table (``schema.table``; the demo's tables when there is no
    publication yet), and the types of the columns ``SCHEMA_CHECKS`` names, in one snapshot."""
    with psycopg.connect(dsn, connect_timeout=5) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        published = conn.execute(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s ORDER BY 1, 2",
            (publication,),
        ).fetchall()
        tables = [(str(s), str(t)) for s, t in published] or [("public", t) for t in TABLES]
        counts: dict[str, int] = {}
        for schema, table in tables:
            quoted = sql.Identifier(schema, table)
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(quoted)).fetchone()
            counts[f"{schema}.{table}"] = int(row[0]) if row else 0
        types = {
            (str(t), str(c)): str(d)
            for t, c, d in conn.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public' AND (table_name, column_name) IN"
                " (SELECT * FROM unnest(%s::text[], %s::text[]))",
                ([t for t, _, _ in SCHEMA_CHECKS], [c for _, c, _ in SCHEMA_CHECKS]),
            ).fetchall()
        }
    return counts, types


def _captured(catalog: Catalog) -> dict[str, int]:
    try:
        catalog.load_table(CDC_CHANGES)
    except NoSuchTableError:
        return {}
    with attach_catalog(catalog, [CDC_CHANGES]) as warehouse:
        rows = warehouse.con.execute(
            f"SELECT json_extract_string(delivery, '$.op'), count(*) FROM {CDC_CHANGES} "
            "WHERE stream NOT IN (?, ?) GROUP BY ALL ORDER BY 1",
            [SNAPSHOT_DONE_STREAM, REJECTED_STREAM],
        ).fetchall()
    return {str(op): int(n) for op, n in rows}


def _lake_type(catalog: Catalog, identifier: str, column: str) -> str | None:
    try:
        schema = catalog.load_table(identifier).schema()
    except NoSuchTableError:
        return None
    names = {f.name: f for f in schema.fields}
    return str(names[column].field_type) if column in names else None
