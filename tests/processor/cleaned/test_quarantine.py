"""Rows that cannot become cleaned rows land in quarantine.sdk_events, bytes and reason kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleaned_support import lake, raw_rows, rows, track

from insightloop.processor.cleaned.stage import CleanedStage


def test_rejected_and_unusable_rows_are_quarantined_with_reasons(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    not_json = b'{"type": "track", "event": '
    bad_context = b'{"type":"page","messageId":"p1","userId":"u1","context":"mobile"}'
    bad_traits = b'{"type":"identify","messageId":"i1","userId":"u1","traits":[1]}'
    events: list[dict[str, Any] | bytes] = [track("ok", "Clicked"), not_json, bad_context, bad_traits]
    events.append(track("no-user", "Clicked"))
    missing = (4, "missing_field", "userId", "message needs `userId` or `anonymousId`")
    raw, messages = raw_rows(events, seq=7, rejections=[missing])
    stage.apply(raw, messages)

    quarantined = {row["origin"]: row for row in rows(catalog, "quarantine.sdk_events", "origin")}
    assert set(quarantined) == {"log:0:7:1", "log:0:7:2", "log:0:7:3", "log:0:7:4"}
    assert quarantined["log:0:7:1"]["kind"] == "malformed_json"
    assert quarantined["log:0:7:1"]["payload"] == not_json
    assert quarantined["log:0:7:1"]["stream"] == "rejected"
    page = quarantined["log:0:7:2"]
    assert (page["kind"], page["field"], page["stream"], page["event_id"]) == (
        "wrong_type",
        "context",
        "page",
        "p1",
    )
    assert page["payload"] == bad_context
    assert (quarantined["log:0:7:3"]["field"], quarantined["log:0:7:3"]["payload"]) == ("traits", bad_traits)
    user = quarantined["log:0:7:4"]
    assert (user["kind"], user["field"], user["reason"]) == missing[1:]
    assert all(row["ingest_seq"] == 7 and row["source"] == "web" for row in quarantined.values())

    assert [row["id"] for row in rows(catalog, "cleaned.tracks")] == ["ok"]
    assert rows(catalog, "cleaned.pages") == [] and rows(catalog, "cleaned.users") == []
    assert stage.watermark() == 7
