"""The processor's and the cleaner's metrics are served for Prometheus; a busy port is not fatal."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from insightloop.processor.metrics import ProcessorMetrics, serve
from insightloop.testing import free_port


def test_metrics_are_served_in_prometheus_text_format() -> None:
    metrics = ProcessorMetrics()
    metrics.raw_rows.inc(42)
    port = free_port()
    serve(metrics, "127.0.0.1", port, "processor")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples["insightloop_processor_raw_rows_committed_total"] == 42


def test_a_busy_port_leaves_the_service_running() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        serve(ProcessorMetrics(), "127.0.0.1", taken.getsockname()[1], "processor")  # logs, no raise
