"""Back-pressure and durability: 429 with Retry-After instead of queueing without bound,
503 when the log fails, and 200 only once the log append has returned."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import httpx
import pytest
from collector_kit import WEB, TestClient, make_config, running, stored, wait_until

from insightloop.errors import LogFullError
from insightloop.log.memory import MemoryLog
from insightloop.types import LogPosition

EVENT = {"userId": "u1", "event": "Report Created"}


class GatedLog(MemoryLog):
    """A log whose appends wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(shards=1)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def append(self, shard: str, records: Sequence[bytes]) -> list[LogPosition]:
        self.entered.set()
        if not self.gate.wait(30):
            raise TimeoutError("the test never opened the gate")
        return super().append(shard, records)


class BrokenLog(MemoryLog):
    """A log whose appends fail with ``error`` while it is set."""

    def __init__(self) -> None:
        super().__init__(shards=1)
        self.error: Exception | None = None

    def append(self, shard: str, records: Sequence[bytes]) -> list[LogPosition]:
        if self.error is not None:
            raise self.error
        return super().append(shard, records)


def post(client: TestClient, message_id: str) -> httpx.Response:
    response: httpx.Response = client.post("/v1/track", json={**EVENT, "messageId": message_id}, headers=WEB)
    return response


def assert_retry_later(response: httpx.Response, status: int = 429) -> None:
    assert response.status_code == status
    assert response.headers["Retry-After"] == "2"
    assert response.json()["success"] is False


def test_200_only_after_the_append_has_returned() -> None:
    log = GatedLog()
    with running(make_config(), log) as client, ThreadPoolExecutor(1) as pool:
        answer = pool.submit(post, client, "m1")
        assert log.entered.wait(10)
        with pytest.raises(FutureTimeout):
            answer.result(timeout=0.3)  # the append has not returned: no answer yet
        assert stored(log) == []

        log.gate.set()
        assert answer.result(timeout=10).status_code == 200
        assert [e.message_id for r in stored(log) for e in r.events] == ["m1"]


def test_full_writer_queue_is_429_until_it_drains() -> None:
    log = GatedLog()
    config = make_config(max_pending_requests=2)
    with running(config, log) as client, ThreadPoolExecutor(3) as pool:
        first = pool.submit(post, client, "m1")
        assert log.entered.wait(10)  # the writer is stuck appending m1
        waiting: list[Future[httpx.Response]] = [pool.submit(post, client, f"m{i}") for i in (2, 3)]
        wait_until(lambda: client.get("/health").json()["queue"]["depth"] == 2, "two queued requests")

        assert_retry_later(post(client, "m4"))

        log.gate.set()
        assert [f.result(timeout=10).status_code for f in (first, *waiting)] == [200, 200, 200]
        assert post(client, "m5").status_code == 200
    assert sorted(e.message_id for r in stored(log) for e in r.events) == ["m1", "m2", "m3", "m5"]


def test_log_full_is_429_and_clears_when_the_log_is_trimmed() -> None:
    log = MemoryLog(shards=1, max_records=2)
    with running(make_config(), log) as client:
        assert [post(client, f"m{i}").status_code for i in range(2)] == [200, 200]
        assert_retry_later(post(client, "m2"))

        log.trim("shard-0", before=2)  # consumed and released: room again
        assert post(client, "m3").status_code == 200


def test_log_lag_above_the_threshold_is_429_until_the_processor_catches_up() -> None:
    log = MemoryLog(shards=1)
    config = make_config(max_log_lag_records=3)
    with running(config, log, lag_check_seconds=0.02) as client:
        assert [post(client, f"m{i}").status_code for i in range(3)] == [200, 200, 200]
        wait_until(lambda: client.get("/health").json()["status"] == "backpressure", "back-pressure")

        assert_retry_later(post(client, "m3"))
        assert client.get("/health").json()["log"]["lag_records"] == 3

        log.save_checkpoint("processor", "shard-0", 1)  # the processor has consumed two records
        wait_until(lambda: client.get("/health").json()["status"] == "ok", "back-pressure to clear")
        assert post(client, "m4").status_code == 200
    assert [e.message_id for r in stored(log) for e in r.events] == ["m0", "m1", "m2", "m4"]


def test_a_failing_log_is_503_and_the_collector_recovers() -> None:
    log = BrokenLog()
    with running(make_config(), log) as client:
        log.error = OSError("disk on fire")
        assert_retry_later(post(client, "m1"), status=503)
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert "disk on fire" in health["log"]["append_error"]

        log.error = None
        assert post(client, "m2").status_code == 200
        assert client.get("/health").json()["status"] == "ok"
    assert [e.message_id for r in stored(log) for e in r.events] == ["m2"]


def test_log_full_error_raised_by_any_log_is_429() -> None:
    log = BrokenLog()
    with running(make_config(), log) as client:
        log.error = LogFullError("consumers are behind")
        assert_retry_later(post(client, "m1"))
        assert 'endpoint="track",status="429"} 1.0' in client.get("/metrics").text
