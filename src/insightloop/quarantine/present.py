"""Quarantined rows as people read them (text) and as programs read them (JSON-ready data).

The payload is shown as it was received: pretty-printed when it is JSON, else as escaped
text (non-UTF-8 bytes and control characters as ``\\xNN``), never altered in storage.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from insightloop.quarantine.reading import Group, QuarantinedRow


def violations_of(row: QuarantinedRow) -> list[dict[str, str]]:
    """The row's violations (``pointer``, ``keyword``, ``message``); [] when it has none."""
    if not row.violations:
        return []
    try:
        data = orjson.loads(row.violations)
    except orjson.JSONDecodeError:
        return [{"pointer": "", "keyword": "", "message": row.violations}]
    if not isinstance(data, list):
        return []
    return [
        {key: str(item.get(key, "")) for key in ("pointer", "keyword", "message")}
        for item in data
        if isinstance(item, dict)
    ]


def payload_json(payload: bytes | None) -> Any:
    """The payload decoded, when it is JSON (else None)."""
    if not payload:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def payload_text(payload: bytes | None) -> str:
    """The payload pretty-printed (JSON), or as escaped text (anything else)."""
    if not payload:
        return "(empty)"
    decoded = payload_json(payload)
    if decoded is not None:
        return orjson.dumps(decoded, option=orjson.OPT_INDENT_2).decode()
    return escaped(payload)


def escaped(payload: bytes) -> str:
    """Bytes as printable text: UTF-8 kept, other bytes and control characters escaped."""
    text = payload.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


def format_row(row: QuarantinedRow) -> str:
    """One quarantined row as an indented block of text."""
    label = f"── {row.event_id or '(no event id)'} "
    lines = [label + "─" * max(3, 72 - len(label))]

    def add(name: str, value: str) -> None:
        lines.append(f"{name:<12}{value}")

    add("source", f"{row.source or '-'}   stream {row.stream or '-'}")
    kind = row.kind or "-"
    add("kind", kind if row.field is None else f"{kind}   field {row.field}")
    if row.contract:
        add("contract", row.contract)
    add("reason", row.reason or "-")
    violations = violations_of(row)
    for index, violation in enumerate(violations):
        pointer = violation["pointer"] or "/"
        add(
            "violations" if index == 0 else "", f"{pointer}  [{violation['keyword']}]  {violation['message']}"
        )
    add("received", _iso(row.received_at))
    add("quarantined", _iso(row.quarantined_at))
    add("origin", f"{row.origin or '-'}   raw seq {row.ingest_seq if row.ingest_seq is not None else '-'}")
    lines.append("payload")
    lines.extend("  " + line for line in payload_text(row.payload).splitlines())
    return "\n".join(lines)


def row_data(row: QuarantinedRow) -> dict[str, Any]:
    """One quarantined row as JSON-ready data: the payload as JSON when it is, else as
    escaped text (``payload_text``)."""
    decoded = payload_json(row.payload)
    return {
        "event_id": row.event_id,
        "source": row.source,
        "stream": row.stream,
        "kind": row.kind,
        "field": row.field,
        "contract": row.contract,
        "reason": row.reason,
        "violations": violations_of(row),
        "received_at": _iso_or_none(row.received_at),
        "quarantined_at": _iso_or_none(row.quarantined_at),
        "origin": row.origin,
        "ingest_seq": row.ingest_seq,
        "payload": decoded if decoded is not None else None,
        "payload_text": None if decoded is not None else escaped(row.payload or b""),
    }


def group_data(group: Group) -> dict[str, Any]:
    return {
        "source": group.source,
        "stream": group.stream,
        "kind": group.kind,
        "contract": group.contract,
        "reason": group.reason,
        "rows": group.rows,
        "first_received": _iso_or_none(group.first_received),
        "last_received": _iso_or_none(group.last_received),
    }


def _iso_or_none(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat()


def _iso(moment: dt.datetime | None) -> str:
    return _iso_or_none(moment) or "-"
