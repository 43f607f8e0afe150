"""``insightloop status``: what the lake holds, how fresh it is, how far behind the log is, and
whether the services are up. Read-only and cheap: counts come from snapshot summaries, never
from scanning data; an empty or missing data directory is a valid (empty) status.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
from typing import Any

import msgspec
from pyiceberg.catalog import Catalog
from pyiceberg.conversions import from_bytes
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation
from pyiceberg.types import TimestampType, TimestamptzType

from insightloop.cli.services import CDC_SERVICES, EXPORT_SERVICES, SERVICES, running_pid
from insightloop.config import Config
from insightloop.exports.status import FileStatus, files_status
from insightloop.lake.catalog import NAMESPACES, open_catalog
from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.lake.watermarks import LOG_POSITIONS, RAW_SEQ, committed_property
from insightloop.quarantine.reading import QUARANTINE
from insightloop.warehouse import lake_exists

#: Columns whose newest value tells how fresh a table is, in order of preference.
FRESHNESS_COLUMNS = ("received_at", "timestamp", "event_time")
#: The processor's consumer name in log checkpoints when its runner does not say otherwise.
DEFAULT_CONSUMER = "processor"


class TableStatus(msgspec.Struct):
    table: str
    rows: int
    snapshots: int
    last_commit: str | None
    newest_column: str | None
    newest: str | None
    rows_last_minute: int
    rows_per_second: float


class ShardStatus(msgspec.Struct):
    shard: str
    checkpoint: int | None
    committed: int | None
    lag_records: int | None
    lag_seconds: float | None


class ServiceStatus(msgspec.Struct):
    name: str
    up: bool
    detail: str


class Stage2Status(msgspec.Struct):
    """How far stage 2 (raw → cleaned) is behind raw, in raw commits (micro-batches)."""

    mode: str
    raw_seq: int | None
    watermark: int
    lag: int | None


class QuarantineCount(msgspec.Struct):
    """Quarantined rows of one source, failure kind and contract (null: none was tried)."""

    source: str | None
    kind: str | None
    contract: str | None
    last_hour: int
    last_day: int
    total: int
    per_minute: float


class QuarantineStatus(msgspec.Struct):
    """Rows in ``quarantine.sdk_events`` by when they were received: the last hour, the last
    24 hours, ever; ``per_minute`` is the rate over the last hour."""

    last_hour: int = 0
    last_day: int = 0
    total: int = 0
    per_minute: float = 0.0
    counts: list[QuarantineCount] = msgspec.field(default_factory=list)


class Status(msgspec.Struct):
    data_dir: str
    generated_at: str
    tables: list[TableStatus]
    log: list[ShardStatus]
    log_error: str | None
    services: list[ServiceStatus]
    stage2: Stage2Status
    quarantine: QuarantineStatus
    #: ``cdc.status.cdc_status``: the reader's state and its slot (None when CDC is off).
    cdc: dict[str, Any] | None = None
    #: Export files the loader has seen, newest first (``exports.status.files_status``).
    exports: list[FileStatus] = msgspec.field(default_factory=list)


def collect(config: Config, now: float | None = None) -> Status:
    now = time.time() if now is None else now
    tables: list[TableStatus] = []
    committed: dict[str, int] = {}
    raw_seq: int | None = None
    quarantine = QuarantineStatus()
    if lake_exists(config):
        catalog = open_catalog(config)
        loaded = _tables(catalog)
        if any(".".join(table.name()[-2:]) == QUARANTINE for table in loaded):
            quarantine = quarantine_status(config, catalog, now)
        for table in loaded:
            tables.append(table_status(table, now))
            if ".".join(table.name()[-2:]) == SDK_EVENTS:
                committed = _committed_positions(table)
                seq = committed_property(table, RAW_SEQ)
                raw_seq = int(seq) if seq is not None else 0
    shards, log_error = _log_status(config, committed)
    return Status(
        data_dir=config.data_dir,
        generated_at=_iso(now),
        tables=tables,
        log=shards,
        log_error=log_error,
        services=_services(config),
        stage2=_stage2_status(config, raw_seq),
        quarantine=quarantine,
        cdc=_cdc_status(config),
        exports=sorted(files_status(config), key=lambda f: f.at, reverse=True),
    )


def _services(config: Config) -> list[ServiceStatus]:
    services = [_collector_status(config), _pid_status(config, "processor"), _cleaner_status(config)]
    if config.cdc.enabled:
        services.extend(_pid_status(config, name) for name in CDC_SERVICES)
    if config.exports.enabled:
        services.extend(_pid_status(config, name) for name in EXPORT_SERVICES)
    return services


def _cdc_status(config: Config) -> dict[str, Any] | None:
    if not config.cdc.enabled:
        return None
    from insightloop.cdc.status import cdc_status

    return cdc_status(config, timeout=2)


def quarantine_status(config: Config, catalog: Catalog, now: float) -> QuarantineStatus:
    """Quarantine counts per source, kind and contract over the last hour, day and ever,
    read through the warehouse (three columns and ``received_at``)."""
    from insightloop.quarantine.counts import window_counts
    from insightloop.quarantine.reading import open_quarantine

    with open_quarantine(config, catalog) as con:
        found = [] if con is None else window_counts(con, dt.datetime.fromtimestamp(now, dt.UTC))
    counts = [
        QuarantineCount(c.source, c.kind, c.contract, c.last_hour, c.last_day, c.total, c.per_minute)
        for c in found
    ]
    last_hour = sum(c.last_hour for c in counts)
    return QuarantineStatus(
        last_hour=last_hour,
        last_day=sum(c.last_day for c in counts),
        total=sum(c.total for c in counts),
        per_minute=last_hour / 60,
        counts=counts,
    )


def _stage2_status(config: Config, raw_seq: int | None) -> Stage2Status:
    """Stage 2's watermark from its marker file (no table or seen id is loaded)."""
    from insightloop.processor.cleaned.stage import stored_watermark

    watermark = stored_watermark(config)
    lag = None if raw_seq is None else max(raw_seq - watermark, 0)
    return Stage2Status(config.processor.stage2, raw_seq, watermark, lag)


def _cleaner_status(config: Config) -> ServiceStatus:
    if config.processor.stage2_inline:
        return ServiceStatus(
            "cleaner", False, "not used: the processor runs stage 2 (processor.stage2 = 'inline')"
        )
    return _pid_status(config, "cleaner")


def _tables(catalog: Catalog) -> list[Table]:
    return [
        catalog.load_table(identifier)
        for namespace in NAMESPACES
        for identifier in sorted(catalog.list_tables(namespace))
    ]


def table_status(table: Table, now: float) -> TableStatus:
    """Row count, last commit, newest event and rows added lately, from metadata only."""
    name = ".".join(table.name()[-2:])
    snapshot = table.current_snapshot()
    rows = 0
    added = 0
    if snapshot is not None and snapshot.summary is not None:
        rows = int(snapshot.summary.get("total-records", "0"))
    ancestor = snapshot
    # The last minute only: the processor expires snapshots after a few minutes.
    while ancestor is not None and ancestor.timestamp_ms / 1000 >= now - 60:
        summary = ancestor.summary
        if summary is not None and summary.operation == Operation.APPEND:
            added += int(summary.get("added-records", "0"))
        parent = ancestor.parent_snapshot_id
        ancestor = None if parent is None else table.metadata.snapshot_by_id(parent)
    column, newest = _newest(table)
    return TableStatus(
        table=name,
        rows=rows,
        snapshots=len(table.metadata.snapshots),
        last_commit=None if snapshot is None else _iso(snapshot.timestamp_ms / 1000),
        newest_column=column,
        newest=newest,
        rows_last_minute=added,
        rows_per_second=added / 60,
    )


def _newest(table: Table) -> tuple[str | None, str | None]:
    """The newest value of the table's freshness column, from the data files' upper bounds."""
    schema = table.schema()
    names = {field.name: field for field in schema.fields}
    column = next((c for c in FRESHNESS_COLUMNS if c in names), None)
    if column is None or table.current_snapshot() is None:
        return column, None
    field = names[column]
    if not isinstance(field.field_type, TimestampType | TimestamptzType):
        return column, None
    newest: int | None = None
    for task in table.scan().plan_files():
        bound = (task.file.upper_bounds or {}).get(field.field_id)
        if bound is not None:
            value = int(from_bytes(field.field_type, bound))
            newest = value if newest is None else max(newest, value)
    return column, None if newest is None else _iso(newest / 1_000_000)


def _committed_positions(table: Table) -> dict[str, int]:
    text = committed_property(table, LOG_POSITIONS)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _consumer_name() -> str:
    try:
        from insightloop.processor import runner
    except ImportError:
        return DEFAULT_CONSUMER
    name = getattr(runner, "CONSUMER", DEFAULT_CONSUMER)
    return name if isinstance(name, str) else DEFAULT_CONSUMER


def _log_status(config: Config, committed: dict[str, int]) -> tuple[list[ShardStatus], str | None]:
    if not config.path().is_dir():
        return [], None
    try:
        from insightloop.log.factory import open_log

        log = open_log(config)
    except Exception as exc:  # the log may be missing, locked or not built yet: status still works
        return [], f"log unavailable: {exc}"
    consumer = _consumer_name()
    out: list[ShardStatus] = []
    try:
        for shard in log.shards():
            saved = log.checkpoint(consumer, shard)
            done = committed.get(shard)
            known = [o for o in (saved, done) if o is not None]
            lag = log.lag(shard, max(known) if known else None)
            out.append(ShardStatus(shard, saved, done, lag.records, lag.seconds))
    except Exception as exc:
        return out, f"log unavailable: {exc}"
    finally:
        log.close()
    return out, None


def _collector_status(config: Config) -> ServiceStatus:
    host = config.collector.host
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    url = f"http://{host}:{config.collector.port}"
    connection = http.client.HTTPConnection(host, config.collector.port, timeout=1.0)
    try:
        connection.request("GET", "/health")
        code = connection.getresponse().status
    except OSError as exc:
        return ServiceStatus("collector", False, f"{url}/health: {exc.strerror or exc}")
    finally:
        connection.close()
    return ServiceStatus("collector", code == 200, f"{url}/health answered {code}")


def _pid_status(config: Config, name: str) -> ServiceStatus:
    assert name in SERVICES
    pid = running_pid(config, name)
    if pid is None:
        return ServiceStatus(name, False, "not running (no live pid file)")
    return ServiceStatus(name, True, f"running, pid {pid}")


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")
