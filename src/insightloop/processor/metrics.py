"""The stream processor's Prometheus metrics, in a registry of its own.

``serve`` exposes them over HTTP for Prometheus (each process on its own port).
``observe_stage_stats`` turns stage 2's report of each apply (quarantined rows, contract
warnings, time spent checking contracts) into metrics; ``attach_stage_metrics`` hooks it into
a stage that takes observers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_log = structlog.get_logger(__name__)

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_CHECK_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ProcessorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_read = Counter(
            "insightloop_processor_log_records_read",
            "Log records read (one per accepted request)",
            registry=r,
        )
        self.events_read = Counter(
            "insightloop_processor_events_read", "Events and rejections read from the log", registry=r
        )
        self.raw_rows = Counter(
            "insightloop_processor_raw_rows_committed", "Rows committed to raw", registry=r
        )
        self.rejected_rows = Counter(
            "insightloop_processor_rejected_rows",
            "Rejected rows committed to raw, by kind",
            ["kind"],
            registry=r,
        )
        self.batches = Counter("insightloop_processor_batches", "Raw commits (micro-batches)", registry=r)
        self.commit_seconds = Histogram(
            "insightloop_processor_raw_commit_seconds",
            "Time to commit one batch to raw",
            buckets=_SECONDS,
            registry=r,
        )
        self.build_seconds = Histogram(
            "insightloop_processor_raw_build_seconds",
            "Time to turn one batch's records into an Arrow table",
            buckets=_SECONDS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "insightloop_processor_stage2_seconds",
            "Time stage 2 took for one batch",
            buckets=_SECONDS,
            registry=r,
        )
        self.lag_records = Gauge(
            "insightloop_processor_lag_records",
            "Log records not yet committed to raw, per shard",
            ["shard"],
            registry=r,
        )
        self.last_commit = Gauge(
            "insightloop_processor_last_commit_timestamp_seconds",
            "Unix time of the last raw commit",
            registry=r,
        )
        self.raw_seq = Gauge(
            "insightloop_processor_raw_seq", "Last raw ingest sequence committed", registry=r
        )
        self.stage_watermark = Gauge(
            "insightloop_processor_stage2_watermark",
            "Raw ingest sequence stage 2 has fully applied",
            registry=r,
        )
        self.errors = Counter(
            "insightloop_processor_errors",
            "Failures, by where and whether retried",
            ["where", "kind"],
            registry=r,
        )
        self.compactions = Counter(
            "insightloop_processor_compactions", "Partitions compacted, by table", ["table"], registry=r
        )
        self.compacted_files = Counter(
            "insightloop_processor_compacted_files",
            "Small data files rewritten by compaction",
            ["table"],
            registry=r,
        )
        self.snapshots_expired = Counter(
            "insightloop_processor_snapshots_expired",
            "Snapshots expired from table metadata (no file deleted), by table",
            ["table"],
            registry=r,
        )
        self.quarantine_rows = Counter(
            "insightloop_quarantine_rows",
            "Rows written to quarantine, by source, failure kind and contract ('' when none was tried)",
            ["source", "kind", "contract"],
            registry=r,
        )
        self.contract_warnings = Counter(
            "insightloop_contract_warnings",
            "Events that broke their contract and were loaded anyway (mode warn), by contract",
            ["contract"],
            registry=r,
        )
        self.contract_check_seconds = Histogram(
            "insightloop_contract_check_seconds",
            "Time stage 2 spent checking one batch's events against their contracts",
            buckets=_CHECK_SECONDS,
            registry=r,
        )


class StageStats(Protocol):
    """What stage 2 reports after each apply (``processor.cleaned.stage.ApplyStats``)."""

    @property
    def quarantine_counts(self) -> dict[tuple[str, str, str], int]: ...
    @property
    def contract_warned(self) -> dict[str, int]: ...
    @property
    def contract_seconds(self) -> float: ...


@runtime_checkable
class Observable(Protocol):
    """A stage that calls its observers with its stats after each apply."""

    observers: list[Callable[[StageStats], None]]


def observe_stage_stats(metrics: ProcessorMetrics) -> Callable[[StageStats], None]:
    """An observer counting one apply's quarantined rows, contract warnings and check time."""

    def observe(stats: StageStats) -> None:
        for (source, kind, contract), rows in stats.quarantine_counts.items():
            metrics.quarantine_rows.labels(source, kind, contract).inc(rows)
        for contract, warned in stats.contract_warned.items():
            metrics.contract_warnings.labels(contract).inc(warned)
        if stats.contract_seconds:
            metrics.contract_check_seconds.observe(stats.contract_seconds)

    return observe


def attach_stage_metrics(stage: object, metrics: ProcessorMetrics) -> None:
    """Count ``stage``'s applies in ``metrics``, when it is a stage that takes observers."""
    if isinstance(stage, Observable):
        stage.observers.append(observe_stage_stats(metrics))


class Registered(Protocol):
    """Metrics kept in a registry of their own (every process's metrics class)."""

    registry: CollectorRegistry


def serve(metrics: Registered, host: str, port: int, service: str) -> None:
    """Serve ``metrics`` at http://host:port/metrics from a daemon thread (port 0: don't).

    A busy port is logged, not fatal: losing the metrics endpoint must not stop the data."""
    if port == 0:
        return
    try:
        start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        _log.warning("metrics endpoint not served", service=service, host=host, port=port, error=str(exc))
        return
    _log.info("metrics endpoint", service=service, url=f"http://{host}:{port}/metrics")
