"""``GET /health`` and ``GET /metrics``: what an operator and Prometheus read."""

from __future__ import annotations

from collector_kit import WEB, TestClient, make_config, running
from prometheus_client.parser import text_string_to_metric_families

from insightloop.log.memory import MemoryLog


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_health_reports_the_log_and_the_queue(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "log": {
            "shards": ["shard-0", "shard-1"],
            "lag_records": 0,
            "max_lag_records": 20_000,
            "append_error": None,
            "lag_error": None,
        },
        "queue": {"depth": 0, "max": 256},
    }


def test_health_counts_unconsumed_records(log: MemoryLog) -> None:
    log.append("shard-0", [b"x"] * 5)
    log.save_checkpoint("processor", "shard-0", 1)
    with running(make_config(), log) as client:
        assert client.get("/health").json()["log"]["lag_records"] == 3


def test_metrics_in_prometheus_text_format(client: TestClient) -> None:
    batch = {"batch": [{"type": "track", "userId": "u", "event": "E"}, {"type": "track"}]}
    client.post("/v1/batch", json=batch, headers=WEB)
    client.post("/v1/t", json={"userId": "u", "event": "E"}, headers=WEB)
    client.post("/v1/track", json={"userId": "u", "event": "E"})

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found[("insightloop_collector_requests_total", (("endpoint", "batch"), ("status", "200")))] == 1
    assert found[("insightloop_collector_requests_total", (("endpoint", "track"), ("status", "200")))] == 1
    assert found[("insightloop_collector_requests_total", (("endpoint", "track"), ("status", "401")))] == 1
    assert found[("insightloop_collector_events_accepted_total", (("source", "web"),))] == 2
    assert found[("insightloop_collector_events_rejected_total", (("kind", "missing_field"),))] == 1
    assert found[("insightloop_collector_received_bytes_total", ())] > 0
    assert found[("insightloop_collector_log_append_seconds_count", ())] == 2
    assert found[("insightloop_collector_log_append_requests_sum", ())] == 2
    assert found[("insightloop_collector_queue_depth", ())] == 0
    assert found[("insightloop_collector_log_lag_records", ())] == 0


def test_two_apps_in_one_process_keep_their_own_metrics(client: TestClient) -> None:
    client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=WEB)
    with running(make_config(), MemoryLog()) as other:
        key = ("insightloop_collector_requests_total", (("endpoint", "track"), ("status", "200")))
        assert key not in samples(other.get("/metrics").text)
    assert samples(client.get("/metrics").text)[key] == 1
