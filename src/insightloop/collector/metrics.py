"""The collector's Prometheus metrics, in a registry of its own (one per app, so tests and
several apps in one process never collide on the global registry)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "insightloop_collector_requests",
            "HTTP requests answered, by endpoint and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self._accepted = Counter(
            "insightloop_collector_events_accepted",
            "Events durably written to the log as good events, by source",
            ["source"],
            registry=self.registry,
        )
        self._rejected = Counter(
            "insightloop_collector_events_rejected",
            "Events written to the log as rejections, by failure kind",
            ["kind"],
            registry=self.registry,
        )
        self.received_bytes = Counter(
            "insightloop_collector_received_bytes",
            "Decoded request body bytes of requests written to the log",
            registry=self.registry,
        )
        self.append_seconds = Histogram(
            "insightloop_collector_log_append_seconds",
            "Latency of one group-committed log append",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.append_requests = Histogram(
            "insightloop_collector_log_append_requests",
            "Requests written by one group-committed log append",
            buckets=_GROUP_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "insightloop_collector_queue_depth",
            "Requests waiting for the log writer",
            registry=self.registry,
        )
        self.log_lag = Gauge(
            "insightloop_collector_log_lag_records",
            "Records in the log that the processor has not consumed yet (last measurement)",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], Counter] = {}

    def request(self, endpoint: str, status: int) -> None:
        key = (endpoint, str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._requests.labels(*key)
        child.inc()

    def stored(self, source: str, accepted: int, rejected_kinds: list[str], body_bytes: int) -> None:
        if accepted:
            self._accepted.labels(source).inc(accepted)
        for kind in rejected_kinds:
            self._rejected.labels(kind).inc()
        self.received_bytes.inc(body_bytes)

    def watch_queue(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
