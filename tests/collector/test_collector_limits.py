"""Size, compression and nesting limits: hostile bodies cost little and hurt no neighbour."""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import Iterator

import orjson
import pytest
from collector_kit import MB, WEB, TestClient, gzip_bomb, make_config, running, stored

from insightloop.log.memory import MemoryLog

GOOD = {"type": "track", "userId": "u1", "event": "Report Created"}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_event(depth: int) -> bytes:
    return b'{"type":"track","userId":"u1","event":"Deep","properties":{"x":' + nested(depth) + b"}}"


@pytest.fixture
def roomy(log: MemoryLog) -> Iterator[TestClient]:
    """Limits wide enough that a 100,000-deep event is judged on its depth, not its size."""
    with running(make_config(max_event_bytes=256 * 1024), log) as client:
        yield client


def test_gzip_body_is_accepted(client: TestClient, log: MemoryLog) -> None:
    events = [orjson.dumps({**GOOD, "messageId": f"m{i}"}) for i in range(50)]
    body = b'{"batch":[' + b",".join(events) + b"]}"
    headers = {**WEB, "Content-Encoding": "gzip"}
    response = client.post("/v1/batch", content=gzip.compress(body), headers=headers)

    assert response.status_code == 200
    [record] = stored(log)
    assert [e.raw for e in record.events] == events


def test_oversize_event_is_rejected_and_its_neighbours_kept(client: TestClient, log: MemoryLog) -> None:
    big = orjson.dumps({**GOOD, "properties": {"blob": "x" * (33 * 1024)}})
    body = b'{"batch":[' + orjson.dumps(GOOD) + b"," + big + b"," + orjson.dumps(GOOD) + b"]}"
    response = client.post("/v1/batch", content=body, headers=WEB)

    assert response.status_code == 200
    assert [(r["index"], r["kind"]) for r in response.json()["rejected"]] == [(1, "too_large")]
    [record] = stored(log)
    assert len(record.events) == 2
    assert record.rejected[0].kind == "too_large"


def test_oversize_batch_is_413_and_not_stored(client: TestClient, log: MemoryLog) -> None:
    event = orjson.dumps({**GOOD, "properties": {"blob": "x" * 20_000}})
    body = b'{"batch":[' + b",".join([event] * 30) + b"]}"  # ~600 KB
    response = client.post("/v1/batch", content=body, headers=WEB)

    assert response.status_code == 413
    assert response.json()["success"] is False
    assert stored(log) == []
    assert 'endpoint="batch",status="413"} 1.0' in client.get("/metrics").text


def test_oversize_single_event_is_413(client: TestClient, log: MemoryLog) -> None:
    body = orjson.dumps({"userId": "u1", "event": "E", "properties": {"blob": "x" * 40_000}})
    assert client.post("/v1/track", content=body, headers=WEB).status_code == 413
    assert stored(log) == []


def test_gzip_bomb_is_413_without_expanding_in_memory(client: TestClient, log: MemoryLog) -> None:
    bomb = gzip_bomb(1024)  # 1 GB of zeros in about 1 MB
    assert len(bomb) < 2 * MB

    def stream() -> Iterator[bytes]:  # no Content-Length: the server must stop while reading
        for start in range(0, len(bomb), 64 * 1024):
            yield bomb[start : start + 64 * 1024]

    tracemalloc.start()
    try:
        response = client.post("/v1/batch", content=stream(), headers={**WEB, "Content-Encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 413
    assert peak < 50 * MB
    assert stored(log) == []


def test_small_gzip_that_expands_past_the_limit_is_413(client: TestClient, log: MemoryLog) -> None:
    bomb = gzip_bomb(64)  # small on the wire (~66 KB), 64 MB once expanded
    tracemalloc.start()
    try:
        response = client.post("/v1/batch", content=bomb, headers={**WEB, "Content-Encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 413
    assert "decompressed" in response.json()["message"]
    assert peak < 50 * MB
    assert stored(log) == []


def test_corrupt_gzip_is_400_and_kept_as_a_rejection(client: TestClient, log: MemoryLog) -> None:
    body = gzip.compress(b'{"batch": []}')[:-12] + b"garbage-----"
    response = client.post("/v1/batch", content=body, headers={**WEB, "Content-Encoding": "gzip"})

    assert response.status_code == 400
    assert "gzip" in response.json()["message"]
    [record] = stored(log)
    assert record.rejected[0].raw == body


def test_unknown_content_encoding_is_415(client: TestClient, log: MemoryLog) -> None:
    response = client.post("/v1/batch", content=b"{}", headers={**WEB, "Content-Encoding": "br"})
    assert response.status_code == 415
    assert stored(log) == []


def test_event_nested_deeper_than_the_limit_is_rejected(client: TestClient, log: MemoryLog) -> None:
    body = b'{"batch":[' + orjson.dumps(GOOD) + b"," + deep_event(40) + b"]}"
    response = client.post("/v1/batch", content=body, headers=WEB)

    assert response.status_code == 200
    assert [(r["index"], r["kind"]) for r in response.json()["rejected"]] == [(1, "too_deep")]
    [record] = stored(log)
    assert [e.raw for e in record.events] == [orjson.dumps(GOOD)]


def test_brackets_inside_strings_are_not_nesting(client: TestClient, log: MemoryLog) -> None:
    event = orjson.dumps({**GOOD, "properties": {"text": "[{" * 500}})
    response = client.post("/v1/batch", content=b'{"batch":[' + event + b"]}", headers=WEB)

    assert response.json() == {"success": True}
    assert [e.raw for e in stored(log)[0].events] == [event]


def test_depth_100000_in_a_batch_is_rejected_and_neighbours_kept(roomy: TestClient, log: MemoryLog) -> None:
    body = b'{"batch":[' + orjson.dumps(GOOD) + b"," + deep_event(100_000) + b"," + orjson.dumps(GOOD) + b"]}"
    response = roomy.post("/v1/batch", content=body, headers=WEB)

    assert response.status_code == 200
    assert [(r["index"], r["kind"]) for r in response.json()["rejected"]] == [(1, "too_deep")]
    [record] = stored(log)
    assert [e.raw for e in record.events] == [orjson.dumps(GOOD)] * 2
    assert record.rejected[0].raw == deep_event(100_000)[: len(record.rejected[0].raw)]


def test_depth_100000_in_a_batch_with_its_write_key_in_the_body(roomy: TestClient, log: MemoryLog) -> None:
    body = b'{"writeKey":"web-write-key","batch":[' + deep_event(100_000) + b"," + orjson.dumps(GOOD) + b"]}"
    response = roomy.post("/v1/batch", content=body)

    assert response.status_code == 200
    assert [r["kind"] for r in response.json()["rejected"]] == ["too_deep"]
    assert [r.source for r in stored(log)] == ["web"]


def test_depth_100000_as_a_single_event_is_400(roomy: TestClient, log: MemoryLog) -> None:
    response = roomy.post("/v1/track", content=deep_event(100_000), headers=WEB)

    assert response.status_code == 400
    assert response.json()["rejected"][0]["kind"] == "too_deep"
    assert stored(log)[0].rejected[0].kind == "too_deep"


def test_depth_100000_outside_the_events_is_400(client: TestClient, log: MemoryLog) -> None:
    body = b'{"batch":[' + orjson.dumps(GOOD) + b'], "context": {"x":' + nested(100_000) + b"}}"
    response = client.post("/v1/batch", content=body, headers=WEB)

    assert response.status_code == 400
    assert response.json()["kind"] == "too_deep"
    assert stored(log)[0].rejected[0].kind == "too_deep"


def test_the_test_bomb_is_real_gzip() -> None:
    assert gzip.decompress(gzip_bomb(4)) == bytes(4 * MB)
