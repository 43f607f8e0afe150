"""cleaned.users holds each user's latest traits, merged key by key in event-time order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleaned_support import identify, lake, raw_rows, rows, when
from pyiceberg.catalog import Catalog

from insightloop.processor.cleaned.stage import CleanedStage


def _users(catalog: Catalog) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows(catalog, "cleaned.users")}


def test_newer_traits_override_and_older_keys_stay(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    first = [
        identify("i1", "u1", {"email": "ada@example.com", "plan": "free"}, "2024-05-01T10:00:00Z"),
        identify("i2", "u2", {"email": "bob@example.com"}, "2024-05-01T10:00:00Z"),
    ]
    stage.apply(*raw_rows(first, seq=1))
    stage.apply(*raw_rows([identify("i3", "u1", {"plan": "pro", "seats": 5}, "2024-05-02T10:00:00Z")], seq=2))

    users = _users(catalog)
    assert set(users) == {"u1", "u2"}
    assert (users["u1"]["email"], users["u1"]["plan"], users["u1"]["seats"]) == ("ada@example.com", "pro", 5)
    assert users["u1"]["timestamp"] == when("2024-05-02T10:00:00Z")
    assert (users["u2"]["email"], users["u2"]["plan"]) == ("bob@example.com", None)
    assert len(rows(catalog, "cleaned.identifies")) == 3


def test_a_late_older_identify_only_fills_what_nobody_newer_set(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([identify("i1", "u1", {"plan": "pro"}, "2024-05-02T10:00:00Z")], seq=1))
    late = identify("i0", "u1", {"plan": "free", "company": "ACME"}, "2024-04-28T10:00:00Z")
    stage.apply(*raw_rows([late], seq=2))

    (user,) = _users(catalog).values()
    assert (user["plan"], user["company"]) == ("pro", "ACME")
    assert user["timestamp"] == when("2024-05-02T10:00:00Z")  # the newest identify's


def test_identifies_of_one_batch_merge_in_event_time_order(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    events = [
        identify("i2", "u1", {"plan": "pro"}, "2024-05-02T10:00:00Z"),
        identify("i1", "u1", {"plan": "free", "name": "Ada"}, "2024-05-01T10:00:00Z"),
        {"type": "identify", "messageId": "i3", "anonymousId": "anon", "traits": {"plan": "team"}},
    ]
    stage.apply(*raw_rows(events, seq=1))

    users = _users(catalog)
    assert list(users) == ["u1"]  # an anonymous identify makes no user
    assert (users["u1"]["plan"], users["u1"]["name"]) == ("pro", "Ada")
