"""Every endpoint of the Segment HTTP Tracking API stores what it accepts, byte for byte."""

from __future__ import annotations

import time

import orjson
import pytest
from collector_kit import WEB, TestClient, stored

from insightloop.log.memory import MemoryLog

VALID: dict[str, dict[str, object]] = {
    "track": {"userId": "u1", "event": "Report Created", "properties": {"id": 7}},
    "page": {"anonymousId": "a1", "name": "Pricing", "properties": {"url": "https://x.test/p"}},
    "screen": {"userId": "u1", "name": "Home"},
    "identify": {"userId": "u1", "traits": {"email": "ada@example.com"}},
    "group": {"userId": "u1", "groupId": "acme", "traits": {"plan": "pro"}},
    "alias": {"userId": "u1", "previousId": "a1"},
}
SHORT = {"track": "t", "page": "p", "screen": "s", "identify": "i", "group": "g", "alias": "a"}


@pytest.mark.parametrize("message_type", sorted(VALID))
def test_single_event_endpoint_stores_the_exact_bytes(
    client: TestClient, log: MemoryLog, message_type: str
) -> None:
    # Odd spacing and key order on purpose: the log must hold the bytes as sent.
    body = orjson.dumps({"messageId": f"m-{message_type}", **VALID[message_type]}).replace(b":", b" : ")
    before = time.time_ns() // 1000
    response = client.post(f"/v1/{message_type}", content=body, headers=WEB)
    after = time.time_ns() // 1000

    assert response.status_code == 200
    assert response.json() == {"success": True}
    [record] = stored(log)
    assert record.source == "web"
    assert before <= record.received_at_us <= after
    assert record.rejected == []
    [event] = record.events
    assert (event.message_id, event.type, event.raw) == (f"m-{message_type}", message_type, body)


@pytest.mark.parametrize("message_type", sorted(SHORT))
def test_short_aliases_imply_the_same_type(client: TestClient, log: MemoryLog, message_type: str) -> None:
    response = client.post(f"/v1/{SHORT[message_type]}", json=VALID[message_type], headers=WEB)

    assert response.status_code == 200
    assert [e.type for r in stored(log) for e in r.events] == [message_type]


def test_batch_keeps_each_event_as_a_slice_of_the_body(client: TestClient, log: MemoryLog) -> None:
    events = [
        b'{"type":"track","userId":"u1","event":"A","messageId":"m1"}',
        b'{ "type" : "identify", "userId" : "u1", "traits" : {"name": "Ad\xc3\xa1"} }',
        b'{"type":"page","anonymousId":42,"name":"Home","messageId":"m3"}',
    ]
    body = (
        b'{"batch": [' + b" ,\n ".join(events) + b'], "sentAt": "2026-01-02T03:04:05.678Z",'
        b' "context": {"library": {"name": "analytics-python"}}}'
    )
    response = client.post("/v1/batch", content=body, headers=WEB)

    assert response.status_code == 200
    assert response.json() == {"success": True}
    [record] = stored(log)
    assert [e.raw for e in record.events] == events
    assert [e.type for e in record.events] == ["track", "identify", "page"]
    assert record.events[0].message_id == "m1"
    assert record.events[2].message_id == "m3"
    assert record.sent_at == "2026-01-02T03:04:05.678Z"
    assert record.context == b'{"library": {"name": "analytics-python"}}'


def test_an_event_without_message_id_gets_one_that_a_retry_repeats(
    client: TestClient, log: MemoryLog
) -> None:
    body = (
        b'{"batch": [{"type":"track","userId":"u1","event":"A"}, {"type":"track","userId":"u1","event":"B"}]}'
    )
    for _ in range(2):  # an SDK retrying after a timeout sends the same bytes again
        assert client.post("/v1/batch", content=body, headers=WEB).status_code == 200

    first, retry = stored(log)
    ids = [e.message_id for e in first.events]
    assert ids == [e.message_id for e in retry.events]
    assert len(set(ids)) == 2
    assert all(i.startswith("h-") for i in ids)


def test_requests_spread_over_the_shards(client: TestClient, log: MemoryLog) -> None:
    for i in range(20):
        assert (
            client.post("/v1/track", json={**VALID["track"], "messageId": f"m{i}"}, headers=WEB).status_code
            == 200
        )

    per_shard = [len(log.read(shard, None)) for shard in log.shards()]
    assert sum(per_shard) == 20
    assert all(count > 0 for count in per_shard)


def test_an_empty_batch_is_accepted_and_stores_nothing(client: TestClient, log: MemoryLog) -> None:
    response = client.post("/v1/batch", content=b'{"batch": []}', headers=WEB)

    assert response.status_code == 200
    assert stored(log) == []


def test_unknown_endpoint_is_404(client: TestClient) -> None:
    assert client.post("/v1/purchase", json=VALID["track"], headers=WEB).status_code == 404
    assert client.get("/v1/track").status_code == 405
