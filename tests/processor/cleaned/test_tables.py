"""Each Segment call lands in its warehouse table, with Segment's columns."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from cleaned_support import lake, raw_rows, rows, track, when

from insightloop.processor.cleaned.naming import short_hash
from insightloop.processor.cleaned.stage import CleanedStage

RECEIVED = "2024-05-01T12:00:00Z"


def test_each_call_type_lands_in_its_table(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    page_properties = {"url": "https://example.com/", "title": "Welcome"}
    events = [
        track("t1", "Order Completed", {"total": 30}),
        {
            "type": "page",
            "messageId": "p1",
            "anonymousId": "a1",
            "name": "Home",
            "category": "Docs",
            "properties": page_properties,
        },
        {
            "type": "screen",
            "messageId": "s1",
            "userId": "u1",
            "name": "Settings",
            "properties": {"tab": "privacy"},
        },
        {"type": "identify", "messageId": "i1", "userId": "u1", "traits": {"email": "ada@example.com"}},
        {
            "type": "group",
            "messageId": "g1",
            "userId": "u1",
            "groupId": 42,
            "traits": {"name": "ACME", "seats": 5},
        },
        {"type": "alias", "messageId": "al1", "userId": "u1", "previousId": "a1"},
    ]
    raw, messages = raw_rows(events, seq=1, received_at=RECEIVED)
    stage.apply(raw, messages)

    (tracked,) = rows(catalog, "cleaned.tracks")
    assert (tracked["id"], tracked["event"], tracked["event_text"]) == (
        "t1",
        "order_completed",
        "Order Completed",
    )
    assert "total" not in tracked  # properties go to the event's own table only
    (order,) = rows(catalog, "cleaned.order_completed")
    assert (order["id"], order["event"], order["user_id"], order["total"]) == (
        "t1",
        "order_completed",
        "u1",
        30,
    )

    (page,) = rows(catalog, "cleaned.pages")
    assert (page["anonymous_id"], page["user_id"], page["name"], page["category"]) == (
        "a1",
        None,
        "Home",
        "Docs",
    )
    assert (page["url"], page["title"]) == ("https://example.com/", "Welcome")
    (screen,) = rows(catalog, "cleaned.screens")
    assert (screen["name"], screen["tab"]) == ("Settings", "privacy")
    (identified,) = rows(catalog, "cleaned.identifies")
    assert (identified["user_id"], identified["email"]) == ("u1", "ada@example.com")
    (group,) = rows(catalog, "cleaned.groups")
    assert (group["group_id"], group["name"], group["seats"]) == ("42", "ACME", 5)
    (alias,) = rows(catalog, "cleaned.aliases")
    assert (alias["user_id"], alias["previous_id"]) == ("u1", "a1")

    for row in (tracked, page, screen, identified, group, alias):
        assert row["source"] == "web"
        assert row["received_at"] == when(RECEIVED)
    assert rows(catalog, "quarantine.sdk_events") == []
    assert stage.watermark() == 1


def test_times_follow_segment(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    # The client's clock is 1 hour fast: sent at 13:00 by its clock, received at 12:00.
    event = track("t1", "Clicked", timestamp="2024-05-01T12:50:00+00:00")
    raw, messages = raw_rows([event], seq=1, received_at=RECEIVED, sent_at="2024-05-01T13:00:00Z")
    stage.apply(raw, messages)

    (row,) = rows(catalog, "cleaned.tracks")
    assert row["timestamp"] == when("2024-05-01T11:50:00Z")  # skew removed
    assert row["original_timestamp"] == when("2024-05-01T12:50:00Z")  # as the client said
    assert row["sent_at"] == when("2024-05-01T13:00:00Z")  # the batch's sentAt
    assert row["received_at"] == when(RECEIVED)


def test_context_is_flattened_over_the_batch_context(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    own = {
        "library": {"name": "analytics.js", "version": "2.11.1"},
        "page": {"url": "https://example.com/pricing", "referrer": ""},
        "userAgent": "Mozilla/5.0",
        "ip": "203.0.113.7",
        "campaign": {"name": "spring", "terms": ["a", "b"]},
    }
    events = [track("t1", "Viewed", context=own), track("t2", "Viewed")]
    batch = {"library": {"name": "analytics-python", "version": "9"}, "locale": "en-GB"}
    raw, messages = raw_rows(events, seq=1, context=batch)
    stage.apply(raw, messages)

    first, second = rows(catalog, "cleaned.tracks")
    assert first["context_library_name"] == "analytics.js"  # the event's own context wins
    assert first["context_library_version"] == "2.11.1"
    assert first["context_page_url"] == "https://example.com/pricing"
    assert first["context_page_referrer"] == ""
    assert first["context_user_agent"] == "Mozilla/5.0"
    assert first["context_ip"] == "203.0.113.7"
    assert first["context_campaign_name"] == "spring"
    assert first["context_campaign_terms"] == '["a","b"]'  # arrays are JSON text
    assert first["context_locale"] == "en-GB"  # filled in from the batch
    assert second["context_library_name"] == "analytics-python"
    assert second["context_library_version"] == "9"
    assert second["context_locale"] == "en-GB"
    assert second["context_page_url"] is None
    (viewed_first, _) = rows(catalog, "cleaned.viewed")
    assert viewed_first["context_locale"] == "en-GB"


def test_properties_become_snake_case_columns(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    properties = {
        "productID": "p-1",
        "Unit Price": 9.5,
        "inStock": True,
        "address": {"city": "Paris", "geo": {"lat": 48.85}},
        "tags": ["a", 1],
        "id": "not-the-message-id",
        "timestamp": "yesterday",
        "context_thing": 1,
        "2fa": "on",
        "empty": None,
    }
    raw, messages = raw_rows([track("t1", "Product Viewed", properties)], seq=1)
    stage.apply(raw, messages)

    (row,) = rows(catalog, "cleaned.product_viewed")
    assert row["id"] == "t1"
    assert row["product_id"] == "p-1"
    assert row["unit_price"] == 9.5
    assert row["in_stock"] is True
    assert row["address_city"] == "Paris"
    assert row["address_geo_lat"] == 48.85
    assert row["tags"] == '["a",1]'
    assert row["property_id"] == "not-the-message-id"
    assert row["property_timestamp"] == "yesterday"
    assert row["property_context_thing"] == 1
    assert row["property_2fa"] == "on"
    assert "empty" not in row  # a column appears with its first non-null value
    docs = {f.name: f.doc for f in catalog.load_table("cleaned.product_viewed").schema().fields}
    assert docs["product_id"] == "properties.productID"


def test_event_table_names_are_safe(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    events = [
        track("t1", "Users"),
        track("t2", "🎉"),
        track("t3", "3D Print Started"),
        track("t4", "order-completed"),
    ]
    events.append(track("t5", "Order Completed"))
    events.append(track("t6", "App Opened"))  # app_* tables are the CDC processor's
    raw, messages = raw_rows(events, seq=1)
    stage.apply(raw, messages)

    names = {".".join(i) for i in catalog.list_tables("cleaned")}
    assert {
        "cleaned.event__users",
        "cleaned.event__3d_print_started",
        "cleaned.order_completed",
        "cleaned.event__app_opened",
    } <= names
    assert not any(name.startswith("cleaned.app_") for name in names)
    assert f"cleaned.event__{short_hash('🎉')}" in names  # nothing left after snake-casing
    assert [r["event_text"] for r in rows(catalog, "cleaned.order_completed")] == [
        "order-completed",
        "Order Completed",
    ]
    assert [r["id"] for r in rows(catalog, "cleaned.event__users")] == ["t1"]
    tracked = {r["id"]: r["event"] for r in rows(catalog, "cleaned.tracks")}
    assert tracked["t1"] == "event__users"  # tracks.event names the event's table


def test_a_late_event_lands_in_its_own_day(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    events = [
        track("t1", "Clicked", timestamp="2024-05-01T11:00:00Z"),
        track("t2", "Clicked", timestamp="2024-04-20T09:00:00Z"),  # sent from an offline device
    ]
    raw, messages = raw_rows(events, seq=1, received_at=RECEIVED)
    stage.apply(raw, messages)

    table = catalog.load_table("cleaned.clicked")
    files = table.inspect.files().to_pylist()
    days = sorted(f["partition"]["timestamp_day"] for f in files)
    assert days == [date(2024, 4, 20), date(2024, 5, 1)]
    late = table.scan(row_filter="timestamp < '2024-04-21T00:00:00+00:00'").to_arrow()
    assert late.column("id").to_pylist() == ["t2"]


def test_pretty_printed_events_read_like_compact_ones(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    pretty = track("t1", "Clicked", {"label": "a\\nb", "size": {"w": 2}}, context={"ip": "203.0.113.9"})
    events: list[dict[str, Any] | bytes] = [
        json.dumps(pretty, indent=2).replace("\n", "\r\n").encode(),
        track("t2", "Clicked", {"label": "c"}),
    ]
    stage.apply(*raw_rows(events, seq=1))

    first, second = rows(catalog, "cleaned.clicked")
    assert (first["label"], first["size_w"], first["context_ip"]) == ("a\\nb", 2, "203.0.113.9")
    assert (second["label"], second["size_w"]) == ("c", None)
