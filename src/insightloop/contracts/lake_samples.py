"""Sample messages for ``contracts infer`` read from the lake instead of a file.

``raw.sdk_events`` keeps every message exactly as received, also those quarantined (for
having no contract, say), so the newest payloads of an event are the best evidence of what
producers really send. Read through the warehouse (one pinned snapshot), newest first.
"""

from __future__ import annotations

import orjson

from insightloop.config import Config
from insightloop.contracts.infer import Samples, samples_of
from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.warehouse import open_warehouse

KINDS = ("track", "identify", "group", "page", "screen")


def lake_samples(config: Config, event: str | None = None, limit: int = 10_000) -> Samples:
    """Up to ``limit`` of the newest messages in raw (only those named ``event``, as sent,
    when given); payloads that are not JSON objects are counted as skipped."""
    where = "stream IN ({})".format(", ".join("?" for _ in KINDS))
    params: list[object] = list(KINDS)
    if event is not None:
        where += " AND schema_name = ?"
        params.append(event)
    params.append(limit)
    with open_warehouse(config, [SDK_EVENTS]) as warehouse:
        if SDK_EVENTS not in warehouse.pins:
            return Samples()
        rows = warehouse.con.execute(
            f"SELECT payload FROM {SDK_EVENTS} WHERE {where} ORDER BY received_at DESC LIMIT ?", params
        ).fetchall()
    messages = []
    skipped = 0
    for (payload,) in rows:
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            skipped += 1
            continue
        if isinstance(message, dict):
            messages.append(message)
        else:
            skipped += 1
    samples = samples_of(messages)
    samples.skipped += skipped
    return samples
