"""Raw rows made by hand from Segment event dicts, and reading the cleaned tables back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA
from insightloop.processor.cleaned.stage import CleanedStage
from insightloop.segment.message import (
    Message,
    Problem,
    decode,
    event_times_us,
    id_text,
    parse_time,
    to_micros,
)

RECEIVED = "2024-05-01T12:00:00Z"
#: These tests are about building tables from any events: the repository's contracts (which
#: the default config enforces from the current directory) are off; test_contracts.py has its own.
NO_CONTRACTS = {"INSIGHTLOOP__CONTRACTS__MODE": "off"}
#: Columns whose values are processing times: they differ between any two runs.
PROCESSING_TIMES = ("loaded_at", "quarantined_at")


def micros(text: str) -> int:
    parsed = parse_time(text)
    assert parsed is not None
    return to_micros(parsed)


def when(text: str) -> datetime:
    parsed = parse_time(text)
    assert parsed is not None
    return parsed.astimezone(UTC)


def raw_rows(
    events: Sequence[dict[str, Any] | bytes],
    seq: int,
    *,
    source: str = "web",
    received_at: str = RECEIVED,
    sent_at: str | None = None,
    context: dict[str, Any] | None = None,
    rejections: Iterable[tuple[int, str, str | None, str]] = (),
) -> tuple[pa.Table, list[Message | None]]:
    """Raw rows (one raw commit, ``seq``) for ``events`` as if sent in one ``/v1/batch``
    with batch-level ``sent_at`` and ``context``; ``rejections`` (index, kind, field,
    reason) mark events the collector rejected."""
    rejected = {index: (kind, field, reason) for index, kind, field, reason in rejections}
    received_us = micros(received_at)
    delivery_parts: dict[str, Any] = {}
    if sent_at is not None:
        delivery_parts["sentAt"] = sent_at
    if context is not None:
        delivery_parts["context"] = context
    delivery = orjson.dumps(delivery_parts).decode() if delivery_parts else None
    columns: dict[str, list[Any]] = {field.name: [] for field in RAW_ARROW_SCHEMA}
    messages: list[Message | None] = []
    for index, event in enumerate(events):
        payload = event if isinstance(event, bytes) else msgspec.json.encode(event)
        decoded = decode(payload)
        message = decoded if isinstance(decoded, Message) else None
        verdict = rejected.get(index)
        if verdict is None and isinstance(decoded, Problem):
            verdict = (decoded.kind, decoded.field, decoded.reason)
        mtype = (message.type if message else None) or "track"
        message_id = (message.message_id if message else None) or f"rej-{seq}-{index}"
        columns["event_id"].append(message_id)
        columns["source"].append(source)
        columns["stream"].append("rejected" if verdict else mtype)
        columns["schema_name"].append((message.event if mtype == "track" else mtype) if message else None)
        columns["schema_version"].append(None)
        columns["event_time"].append(
            event_times_us(message, received_us, sent_at)[0] if message and not verdict else None
        )
        columns["received_at"].append(received_us)
        columns["subject_user_id"].append(id_text(message.user_id) if message else None)
        columns["subject_anonymous_id"].append(id_text(message.anonymous_id) if message else None)
        columns["subject_account_id"].append(None)
        columns["subject_email_sha256"].append(None)
        columns["payload"].append(payload)
        columns["delivery"].append(delivery)
        columns["rejection"].append(
            orjson.dumps({"kind": verdict[0], "field": verdict[1], "reason": verdict[2]}).decode()
            if verdict
            else None
        )
        columns["origin"].append(f"log:0:{seq}:{index}")
        columns["ingest_seq"].append(seq)
        messages.append(None if verdict else message)
    arrays = [pa.array(columns[field.name], field.type) for field in RAW_ARROW_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=RAW_ARROW_SCHEMA), messages


def track(
    message_id: str, event: str, properties: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "track", "messageId": message_id, "event": event, "userId": "u1"}
    if properties is not None:
        out["properties"] = properties
    out.update(fields)
    return out


def identify(message_id: str, user_id: str, traits: dict[str, Any], timestamp: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": user_id,
        "traits": traits,
        "timestamp": timestamp,
    }


def lake(tmp_path: Path) -> tuple[Config, Catalog]:
    config = load_config(environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path), **NO_CONTRACTS})
    return config, open_catalog(config)


def stage(tmp_path: Path) -> CleanedStage:
    config, catalog = lake(tmp_path)
    return CleanedStage(catalog, config)


def rows(catalog: Catalog, identifier: str, order_by: str = "id") -> list[dict[str, Any]]:
    """Every row of a table (empty if it does not exist), sorted by ``order_by``."""
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        return []
    data = table.scan().to_arrow()
    return sorted(data.to_pylist(), key=lambda row: (str(row.get(order_by)), str(row)))


def contents(catalog: Catalog) -> dict[str, list[dict[str, Any]]]:
    """Every table of ``cleaned`` and ``quarantine``, without processing times."""
    out = {}
    for namespace in ("cleaned", "quarantine"):
        for identifier in catalog.list_tables(namespace):
            name = ".".join(identifier)
            table_rows = rows(catalog, name, "id" if namespace == "cleaned" else "origin")
            out[name] = [{k: v for k, v in row.items() if k not in PROCESSING_TIMES} for row in table_rows]
    return out
