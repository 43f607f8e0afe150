"""The file loader's Prometheus metrics: files by status, rows and bytes loaded, bad rows,
load seconds, plus the housekeeping metrics every writing process has
(``processor.metrics.ProcessorMetrics``: compactions, snapshots expired)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from insightloop.exports.loader import LoadOutcome
from insightloop.processor.metrics import ProcessorMetrics

_SECONDS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)


class ExportMetrics(ProcessorMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.files = Counter(
            "insightloop_export_files",
            "Export files looked at, by outcome (loaded, unchanged, rejected)",
            ["status"],
            registry=r,
        )
        self.rows = Counter(
            "insightloop_export_rows_loaded", "Good rows loaded into raw, by entity", ["entity"], registry=r
        )
        self.bad_rows = Counter(
            "insightloop_export_bad_rows",
            "Bad rows loaded (and quarantined), by entity",
            ["entity"],
            registry=r,
        )
        self.bytes = Counter(
            "insightloop_export_bytes_loaded", "Bytes of the files loaded, by entity", ["entity"], registry=r
        )
        self.load_seconds = Histogram(
            "insightloop_export_load_seconds",
            "Seconds from picking a file to its cleaned commit (loaded files)",
            buckets=_SECONDS,
            registry=r,
        )

    def observe(self, outcome: LoadOutcome) -> None:
        self.files.labels(outcome.status).inc()
        if outcome.record is None or outcome.status != "loaded":
            return
        entity = outcome.file.entity
        self.rows.labels(entity).inc(outcome.record.rows)
        self.bad_rows.labels(entity).inc(outcome.record.bad_rows)
        self.bytes.labels(entity).inc(outcome.record.bytes)
        self.load_seconds.observe(outcome.seconds)
