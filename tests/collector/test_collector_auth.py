"""Write keys: basic-auth user name or ``writeKey`` in the body; anything else is 401."""

from __future__ import annotations

import base64

import pytest
from collector_kit import BACKEND_KEY, WEB, WEB_KEY, TestClient, basic, stored

from insightloop.log.memory import MemoryLog

EVENT = {"userId": "u1", "event": "Signed Up"}


def test_basic_auth_user_name_is_the_write_key(client: TestClient, log: MemoryLog) -> None:
    assert client.post("/v1/track", json=EVENT, headers=basic(BACKEND_KEY)).status_code == 200
    assert [r.source for r in stored(log)] == ["backend"]


def test_basic_auth_with_a_password_still_uses_the_user_name(client: TestClient, log: MemoryLog) -> None:
    header = {"Authorization": "Basic " + base64.b64encode(f"{WEB_KEY}:ignored".encode()).decode()}
    assert client.post("/v1/track", json=EVENT, headers=header).status_code == 200
    assert [r.source for r in stored(log)] == ["web"]


def test_write_key_in_a_batch_body(client: TestClient, log: MemoryLog) -> None:
    body = {"batch": [{"type": "track", **EVENT}], "writeKey": BACKEND_KEY}
    assert client.post("/v1/batch", json=body).status_code == 200
    assert [r.source for r in stored(log)] == ["backend"]


def test_write_key_in_a_single_event_body(client: TestClient, log: MemoryLog) -> None:
    assert client.post("/v1/track", json={**EVENT, "writeKey": WEB_KEY}).status_code == 200
    assert [r.source for r in stored(log)] == ["web"]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, {"batch": [{"type": "track", **EVENT}]}),
        ({}, {"batch": [{"type": "track", **EVENT}], "writeKey": "nope"}),
        (basic("nope"), {"batch": [{"type": "track", **EVENT}]}),
        # A header decides alone: a good key in the body does not rescue a bad one in the header.
        (basic("nope"), {"batch": [{"type": "track", **EVENT}], "writeKey": WEB_KEY}),
        ({"Authorization": "Bearer abc"}, {"batch": [{"type": "track", **EVENT}]}),
        ({"Authorization": "Basic !!notbase64"}, {"batch": [{"type": "track", **EVENT}]}),
    ],
    ids=["missing", "unknown-in-body", "unknown-in-header", "header-decides", "bearer", "bad-base64"],
)
def test_missing_or_unknown_key_is_401_and_nothing_is_stored(
    client: TestClient, log: MemoryLog, headers: dict[str, str], body: object
) -> None:
    response = client.post("/v1/batch", json=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["success"] is False
    assert response.json()["message"]
    assert stored(log) == []


def test_garbage_without_a_key_is_401_not_stored(client: TestClient, log: MemoryLog) -> None:
    assert client.post("/v1/batch", content=b"\x00garbage").status_code == 401
    assert stored(log) == []


def test_rejected_keys_are_counted(client: TestClient) -> None:
    client.post("/v1/track", json=EVENT, headers=basic("nope"))
    client.post("/v1/track", json=EVENT, headers=WEB)

    metrics = client.get("/metrics").text
    assert 'insightloop_collector_requests_total{endpoint="track",status="401"} 1.0' in metrics
    assert 'insightloop_collector_requests_total{endpoint="track",status="200"} 1.0' in metrics
