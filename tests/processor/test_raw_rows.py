"""Stage 1's rows: one per event and per rejection, exact bytes, corrected times, origins."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
from processor_support import RECEIVED_AT_US, record, track

from insightloop.collected import MAX_REJECTED_BYTES, Rejection
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA
from insightloop.processor.raw_rows import RawRows
from insightloop.types import LogPosition, LogRecord


def rows_of(*records: tuple[str, int, bytes], seq: int = 7) -> tuple[RawRows, list[dict[str, Any]]]:
    rows = RawRows()
    for shard, offset, data in records:
        rows.add(LogRecord(LogPosition(shard, offset), data))
    table = rows.to_arrow(seq)
    assert table.schema.equals(RAW_ARROW_SCHEMA)
    return rows, table.to_pylist()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_one_row_per_event_with_exact_bytes_origin_and_sequence() -> None:
    events = [track("m-1", properties={"b": 1, "a": [1, 2]}), track("m-2", event="Dashboard Viewed")]
    data = record(events, source="ios")
    rows, table = rows_of(("shard-1", 41, data))
    assert [r["event_id"] for r in table] == ["m-1", "m-2"]
    assert [r["payload"] for r in table] == [orjson.dumps(e) for e in events]
    assert [r["origin"] for r in table] == ["log:shard-1:41:0", "log:shard-1:41:1"]
    assert {r["source"] for r in table} == {"ios"}
    assert [r["stream"] for r in table] == ["track", "track"]
    assert [r["schema_name"] for r in table] == ["Report Created", "Dashboard Viewed"]
    assert {r["ingest_seq"] for r in table} == {7}
    assert {r["rejection"] for r in table} == {None}
    assert rows.positions == {"shard-1": 41}
    assert [m.message_id if m else None for m in rows.messages] == ["m-1", "m-2"]


def test_event_time_is_corrected_for_the_client_clock() -> None:
    # The client says it sent at 10:00:05 what happened at 09:59:50; we received it at 10:00:00.
    event = track("m-1", timestamp="2025-11-26T09:59:50Z")
    _, table = rows_of(("shard-0", 0, record([event], sent_at="2025-11-26T10:00:05Z")))
    assert table[0]["received_at"] == utc("2025-11-26T10:00:00+00:00")
    assert table[0]["event_time"] == utc("2025-11-26T09:59:45+00:00")


def test_event_without_a_time_happened_when_received() -> None:
    _, table = rows_of(("shard-0", 0, record([track("m-1")])))
    assert table[0]["event_time"] == table[0]["received_at"]


def test_schema_name_is_the_type_for_messages_other_than_track() -> None:
    events: list[dict[str, Any]] = [
        {"type": "page", "messageId": "p", "anonymousId": "a", "name": "Home"},
        {"type": "identify", "messageId": "i", "userId": 42, "traits": {"email": " Ada@Example.com "}},
        {"type": "group", "messageId": "g", "userId": "u", "groupId": 99},
        track("t", context={"groupId": "acct-7", "ip": "1.2.3.4"}),
    ]
    _, table = rows_of(("shard-0", 3, record(events)))
    assert [r["stream"] for r in table] == ["page", "identify", "group", "track"]
    assert [r["schema_name"] for r in table] == ["page", "identify", "group", "Report Created"]
    assert [r["subject_user_id"] for r in table] == [None, "42", "u", "u1"]
    assert [r["subject_anonymous_id"] for r in table] == ["a", None, None, None]
    assert [r["subject_account_id"] for r in table] == [None, None, "99", "acct-7"]
    email_hash = hashlib.sha256(b"ada@example.com").hexdigest()
    assert [r["subject_email_sha256"] for r in table] == [None, email_hash, None, None]


def test_delivery_keeps_what_the_transport_added() -> None:
    context = b'{"library": {"name": "analytics-python"},  "groupId": "acct-1"}'
    body_without_type = {"messageId": "m-2", "userId": "u", "event": "Signed Up"}
    data = record(
        [track("m-1"), body_without_type],
        sent_at="2025-11-26T10:00:01Z",
        context=context,
        types=["track", "track"],
    )
    _, table = rows_of(("shard-0", 0, data))
    first, second = (orjson.loads(r["delivery"]) for r in table)
    assert first == {"sentAt": "2025-11-26T10:00:01Z", "context": orjson.loads(context)}
    assert second == {"type": "track", **first}
    assert f'"context":{context.decode()}' in table[0]["delivery"], "batch context kept verbatim"
    assert [r["subject_account_id"] for r in table] == ["acct-1", "acct-1"], "batch context's groupId"
    _, plain = rows_of(("shard-0", 1, record([track("m-3")])))
    assert plain[0]["delivery"] is None


def test_rejections_become_rows_with_their_reason() -> None:
    big = b"x" * (MAX_REJECTED_BYTES + 10)
    data = record(
        [track("m-1")],
        rejected=[
            Rejection(
                "missing_field", "userId", "message needs `userId` or `anonymousId`", b'{"type":"track"}'
            ),
            Rejection("too_large", None, "event is over 32 KB", big),
        ],
    )
    rows, table = rows_of(("shard-0", 5, data))
    assert [r["stream"] for r in table] == ["track", "rejected", "rejected"]
    assert [r["origin"] for r in table] == ["log:shard-0:5:0", "log:shard-0:5:1", "log:shard-0:5:2"]
    assert orjson.loads(table[1]["rejection"]) == {
        "kind": "missing_field",
        "field": "userId",
        "reason": "message needs `userId` or `anonymousId`",
    }
    assert table[1]["payload"] == b'{"type":"track"}'
    assert len(table[2]["payload"]) == MAX_REJECTED_BYTES
    assert table[1]["event_id"].startswith("rej-") and table[1]["event_id"] != table[2]["event_id"]
    assert {table[1]["schema_name"], table[1]["event_time"]} == {None}
    assert rows.messages[1:] == [None, None]
    assert dict(rows.rejected) == {"missing_field": 1, "too_large": 1}
    # The same record read again (a replay) gives the same ids.
    _, again = rows_of(("shard-0", 5, data))
    assert [r["event_id"] for r in again] == [r["event_id"] for r in table]


def test_a_record_that_is_not_a_collected_batch_is_one_rejected_row() -> None:
    garbage = b"\xff\x00 not msgpack " * 10_000
    rows, table = rows_of(("shard-0", 8, garbage), ("shard-0", 9, record([track("m-after")])))
    assert [r["stream"] for r in table] == ["rejected", "track"]
    bad = table[0]
    assert orjson.loads(bad["rejection"])["kind"] == "malformed_json"
    assert bad["payload"] == garbage[:MAX_REJECTED_BYTES]
    assert bad["origin"] == "log:shard-0:8:0"
    assert bad["received_at"] is not None
    assert rows.positions == {"shard-0": 9}


def test_an_event_whose_bytes_do_not_decode_is_rejected_not_dropped() -> None:
    data = record([track("m-1")])
    # A collector bug could let through an event that is not a JSON object: keep it as data.
    from insightloop.collected import CollectedBatch, CollectedEvent, decode_batch, encode_batch

    batch = decode_batch(data)
    broken = CollectedBatch(
        batch.version, batch.source, batch.received_at_us, None, None,
        [CollectedEvent("m-0", "track", b"[1, 2"), *batch.events],
    )  # fmt: skip
    rows, table = rows_of(("shard-0", 0, encode_batch(broken)))
    assert [(r["event_id"], r["stream"]) for r in table] == [("m-0", "rejected"), ("m-1", "track")]
    assert table[0]["payload"] == b"[1, 2"
    assert [r["rejection"] is None for r in table] == [False, True]
    assert rows.messages[0] is None and rows.messages[1] is not None


def test_received_at_of_the_batch_is_kept() -> None:
    _, table = rows_of(("shard-0", 0, record([track("m")], received_at_us=RECEIVED_AT_US + 1)))
    assert table[0]["received_at"] == datetime.fromtimestamp((RECEIVED_AT_US + 1) / 1e6, UTC)
    assert pa.types.is_timestamp(RAW_ARROW_SCHEMA.field("received_at").type)
