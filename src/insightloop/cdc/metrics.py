"""The CDC reader's Prometheus metrics, in a registry of its own (served on
``cdc.metrics_port`` by ``serve``)."""

from __future__ import annotations

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_log = structlog.get_logger(__name__)

_DELAY = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class CdcMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.changes = Counter(
            "insightloop_cdc_changes_captured", "Changes appended to the CDC log, by op", ["op"], registry=r
        )
        self.transactions = Counter(
            "insightloop_cdc_transactions",
            "Source transactions whose changes are durable in the log",
            registry=r,
        )
        self.records = Counter(
            "insightloop_cdc_log_records", "Log records (ChangeBatch) appended", registry=r
        )
        self.confirmed_lsn = Gauge(
            "insightloop_cdc_confirmed_lsn", "Last LSN confirmed to the slot (durable in the log)", registry=r
        )
        self.received_lsn = Gauge(
            "insightloop_cdc_received_lsn", "Last WAL position received from the server", registry=r
        )
        self.slot_lag_bytes = Gauge(
            "insightloop_cdc_slot_lag_bytes",
            "Server WAL position minus the slot's confirmed flush LSN",
            registry=r,
        )
        self.slot_lag_seconds = Gauge(
            "insightloop_cdc_slot_lag_seconds",
            "Age of the oldest source commit not yet durable in the log (0 when caught up)",
            registry=r,
        )
        self.retained_wal_bytes = Gauge(
            "insightloop_cdc_slot_retained_wal_bytes",
            "WAL the server keeps for the slot (current position minus restart_lsn)",
            registry=r,
        )
        self.wal_retention_warning = Gauge(
            "insightloop_cdc_wal_retention_warning",
            "1 while the slot retains more WAL than cdc.wal_warn_bytes",
            registry=r,
        )
        self.replication_delay = Histogram(
            "insightloop_cdc_replication_delay_seconds",
            "Source commit to durable in the CDC log, per transaction",
            buckets=_DELAY,
            registry=r,
        )
        self.last_delay = Gauge(
            "insightloop_cdc_last_replication_delay_seconds",
            "Commit-to-log delay of the last transaction appended",
            registry=r,
        )
        self.snapshot_rows = Gauge(
            "insightloop_cdc_snapshot_rows", "Rows read by the current snapshot", registry=r
        )
        self.snapshot_tables_done = Gauge(
            "insightloop_cdc_snapshot_tables_done", "Tables whose snapshot is complete", registry=r
        )
        self.snapshot_tables_total = Gauge(
            "insightloop_cdc_snapshot_tables_total", "Tables the current snapshot covers", registry=r
        )
        self.snapshots = Counter(
            "insightloop_cdc_snapshots",
            "Snapshots started, by why (new, resumed, slot_lost)",
            ["reason"],
            registry=r,
        )
        self.errors = Counter("insightloop_cdc_errors", "Failures, by whether retried", ["kind"], registry=r)
