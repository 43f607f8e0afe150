"""The CDC processor's Prometheus metrics: the stream processor's own (stage 1, errors,
housekeeping: ``processor.metrics``) plus what stage 2 applied, per source table, and the
end-to-end lag (commit in PostgreSQL → applied in the lake)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from insightloop.processor.cdc.stage import CdcApplyStats
from insightloop.processor.metrics import ProcessorMetrics

_LAG_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class CdcMetrics(ProcessorMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.changes_applied = Counter(
            "insightloop_cdc_changes_applied",
            "Changes applied to current state, by table",
            ["table"],
            registry=r,
        )
        self.history_rows = Counter(
            "insightloop_cdc_history_rows", "Rows appended to change history, by table", ["table"], registry=r
        )
        self.quarantined = Counter(
            "insightloop_cdc_quarantined", "Changes or values quarantined, by kind", ["kind"], registry=r
        )
        self.last_lsn = Gauge(
            "insightloop_cdc_applied_lsn",
            "Highest LSN applied in the last batch, by table",
            ["table"],
            registry=r,
        )
        self.apply_lag = Histogram(
            "insightloop_cdc_apply_lag_seconds",
            "Newest change of a batch: its commit in PostgreSQL to its lake commit",
            buckets=_LAG_SECONDS,
            registry=r,
        )

    def observe(self, stats: CdcApplyStats) -> None:
        """A ``CdcStage`` observer."""
        for outcome in stats.tables:
            self.changes_applied.labels(outcome.table).inc(outcome.changes)
            self.history_rows.labels(outcome.table).inc(outcome.history_rows)
            if outcome.last_lsn is not None:
                self.last_lsn.labels(outcome.table).set(outcome.last_lsn)
        for kind, count in stats.quarantine_kinds.items():
            self.quarantined.labels(kind).inc(count)
        if stats.newest_change_us is not None:
            self.apply_lag.observe(max(time.time() - stats.newest_change_us / 1e6, 0.0))
