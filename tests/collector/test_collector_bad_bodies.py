"""Bodies and events that break the spec: 400 with a precise reason, and kept as rejections."""

from __future__ import annotations

import orjson
import pytest
from collector_kit import WEB, TestClient, stored

from insightloop.collected import MAX_REJECTED_BYTES
from insightloop.log.memory import MemoryLog

GOOD = {"type": "track", "userId": "u1", "event": "Report Created"}


@pytest.mark.parametrize(
    ("body", "kind", "field", "reason"),
    [
        (b'{"batch": [', "malformed_json", None, "not valid JSON"),
        (b"\xff\xfe{}", "malformed_json", None, "not valid JSON"),
        (b'{"batch": [], "sentAt": "caf\xe9"}', "invalid_utf8", None, "UTF-8"),
        (b"[1, 2]", "wrong_type", None, "not a JSON object"),
        (b'{"batch": {"type": "track"}}', "wrong_type", "batch", "`batch` is not a list"),
        (b'{"events": []}', "missing_field", "batch", "no `batch`"),
        (b'{"batch": [], "context": 5}', "wrong_type", "context", "not an object"),
    ],
    ids=["truncated", "binary", "latin1", "array", "batch-object", "no-batch", "context-number"],
)
def test_a_body_that_is_no_batch_is_400_and_kept_as_one_rejection(
    client: TestClient, log: MemoryLog, body: bytes, kind: str, field: str | None, reason: str
) -> None:
    response = client.post("/v1/batch", content=body, headers=WEB)

    assert response.status_code == 400
    answer = response.json()
    assert answer["success"] is False
    assert (answer["kind"], answer.get("field")) == (kind, field)
    assert reason in answer["message"]
    [record] = stored(log)
    assert record.events == []
    [rejection] = record.rejected
    assert (rejection.kind, rejection.field, rejection.raw) == (kind, field, body)


def test_a_huge_garbage_body_is_kept_truncated(client: TestClient, log: MemoryLog) -> None:
    body = b"x" * 200_000
    assert client.post("/v1/batch", content=body, headers=WEB).status_code == 400
    [record] = stored(log)
    assert record.rejected[0].raw == body[:MAX_REJECTED_BYTES]


def test_good_and_bad_events_in_one_batch(client: TestClient, log: MemoryLog) -> None:
    events = [
        GOOD,
        {"type": "track", "event": "No Ids"},
        {"userId": "u1", "event": "No Type"},
        {"type": "purchase", "userId": "u1"},
        {"type": "track", "userId": "u1", "event": "Bad Time", "timestamp": "yesterday"},
        {"type": "track", "userId": "u1"},
        {"type": "group", "userId": "u1"},
        "not an object",
        {**GOOD, "messageId": "last"},
    ]
    response = client.post("/v1/batch", content=orjson.dumps({"batch": events}), headers=WEB)

    assert response.status_code == 200
    answer = response.json()
    assert answer["success"] is True
    rejected = [(r["index"], r["kind"], r["field"]) for r in answer["rejected"]]
    assert rejected == [
        (1, "missing_field", "userId"),
        (2, "missing_field", "type"),
        (3, "unknown_type", "type"),
        (4, "wrong_type", "timestamp"),
        (5, "missing_field", "event"),
        (6, "missing_field", "groupId"),
        (7, "wrong_type", None),
    ]
    assert all(r["reason"] for r in answer["rejected"])
    [record] = stored(log)
    assert [e.raw for e in record.events] == [orjson.dumps(GOOD), orjson.dumps({**GOOD, "messageId": "last"})]
    assert [(r.kind, r.field) for r in record.rejected] == [(k, f) for _, k, f in rejected]
    assert record.rejected[0].raw == orjson.dumps(events[1])


def test_missing_ids_reason_names_both_fields(client: TestClient) -> None:
    body = {"batch": [GOOD, {"type": "identify", "traits": {}}]}
    [rejected] = client.post("/v1/batch", json=body, headers=WEB).json()["rejected"]
    assert "userId" in rejected["reason"] and "anonymousId" in rejected["reason"]


def test_a_batch_of_only_bad_events_is_400_but_still_kept(client: TestClient, log: MemoryLog) -> None:
    body = {"batch": [{"type": "track"}, {"type": "nonsense", "userId": "u"}]}
    response = client.post("/v1/batch", json=body, headers=WEB)

    assert response.status_code == 400
    answer = response.json()
    assert answer["success"] is False
    assert [r["kind"] for r in answer["rejected"]] == ["missing_field", "unknown_type"]
    assert "userId" in answer["message"]
    [record] = stored(log)
    assert record.events == []
    assert [r.kind for r in record.rejected] == ["missing_field", "unknown_type"]


@pytest.mark.parametrize(
    ("path", "body", "kind", "field"),
    [
        ("/v1/track", b'{"event": "No Ids"}', "missing_field", "userId"),
        ("/v1/track", b'{"userId": "u1"}', "missing_field", "event"),
        ("/v1/alias", b'{"userId": "u1"}', "missing_field", "previousId"),
        ("/v1/identify", b'{"userId": "u1", "timestamp": 5}', "wrong_type", "timestamp"),
        ("/v1/page", b'{"userId": "u1", "name": "caf\xe9"}', "invalid_utf8", None),
        ("/v1/page", b'{"userId": "u1"', "malformed_json", None),
        ("/v1/screen", b'["u1"]', "wrong_type", None),
    ],
)
def test_a_single_event_that_breaks_the_spec_is_400_and_kept(
    client: TestClient, log: MemoryLog, path: str, body: bytes, kind: str, field: str | None
) -> None:
    response = client.post(path, content=body, headers=WEB)

    assert response.status_code == 400
    [rejected] = response.json()["rejected"]
    assert (rejected["index"], rejected["kind"], rejected["field"]) == (0, kind, field)
    [record] = stored(log)
    assert [(r.kind, r.field, r.raw) for r in record.rejected] == [(kind, field, body)]


def test_invalid_utf8_inside_properties_rejects_only_that_event(client: TestClient, log: MemoryLog) -> None:
    bad = b'{"type":"track","userId":"u1","event":"E","properties":{"name":"caf\xe9"}}'
    body = b'{"batch": [' + orjson.dumps(GOOD) + b"," + bad + b"]}"
    response = client.post("/v1/batch", content=body, headers=WEB)

    assert response.status_code == 200
    assert [(r["index"], r["kind"]) for r in response.json()["rejected"]] == [(1, "invalid_utf8")]
    [record] = stored(log)
    assert [e.raw for e in record.events] == [orjson.dumps(GOOD)]
    assert record.rejected[0].raw == bad


def test_rejections_are_counted_by_kind(client: TestClient) -> None:
    client.post(
        "/v1/batch", json={"batch": [GOOD, {"type": "track"}, {"type": "x", "userId": "u"}]}, headers=WEB
    )

    metrics = client.get("/metrics").text
    assert 'insightloop_collector_events_rejected_total{kind="missing_field"} 1.0' in metrics
    assert 'insightloop_collector_events_rejected_total{kind="unknown_type"} 1.0' in metrics
    assert 'insightloop_collector_events_accepted_total{source="web"} 1.0' in metrics
