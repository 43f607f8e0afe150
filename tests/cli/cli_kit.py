"""Helpers of the CLI tests: raw rows at fixed times."""

from __future__ import annotations

import datetime as dt


def at(second: int) -> dt.datetime:
    return dt.datetime(2026, 11, 1, 12, 0, second, tzinfo=dt.UTC)


def raw_row(event_id: str, second: int, seq: int) -> dict[str, object]:
    return {
        "event_id": event_id,
        "source": "web",
        "stream": "track",
        "schema_name": "Report Created",
        "event_time": at(second),
        "received_at": at(second),
        "payload": b'{"type":"track"}',
        "origin": f"log:shard-0:{seq}:0",
        "ingest_seq": seq,
    }
