"""Segment's message spec (https://segment.com/docs/connections/spec/): decoding and the
rules every message must meet. Shared by the collector (to accept or reject) and the
stream processor (to build tables), so both apply exactly the same rules.

Nested objects (``context``, ``properties``, ``traits``, ``integrations``) stay undecoded
(``msgspec.Raw``): the hot path only parses what it needs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from insightloop.types import FailureKind

MESSAGE_TYPES = frozenset({"track", "page", "screen", "identify", "group", "alias"})
#: Endpoint path (``/v1/<name>``) → the message type it implies.
ENDPOINT_TYPES = {name: name for name in MESSAGE_TYPES}


class Message(msgspec.Struct, rename="camel", omit_defaults=True):
    """One Segment message with its nested objects left as raw JSON."""

    type: str | None = None
    message_id: str | None = None
    user_id: str | int | None = None
    anonymous_id: str | int | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    group_id: str | int | None = None
    previous_id: str | int | None = None
    timestamp: str | None = None
    original_timestamp: str | None = None
    sent_at: str | None = None
    write_key: str | None = None
    # Raw JSON of the nested objects; an empty Raw (``len(raw) == 0``) when absent.
    # (msgspec cannot decode ``Raw | None``: a missing object is the empty Raw instead.)
    context: msgspec.Raw = msgspec.Raw()
    properties: msgspec.Raw = msgspec.Raw()
    traits: msgspec.Raw = msgspec.Raw()
    integrations: msgspec.Raw = msgspec.Raw()


class Problem(msgspec.Struct, frozen=True):
    """Why a message breaks the spec: a failure kind, the field, a message for people."""

    kind: FailureKind
    field: str | None
    reason: str


_decoder = msgspec.json.Decoder(Message)


def decode(raw: bytes) -> Message | Problem:
    """Decode one message's bytes; a Problem (never an exception) when they are not one."""
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        return Problem(FailureKind.WRONG_TYPE, field, f"wrong type: {exc}")
    except UnicodeDecodeError as exc:
        return Problem(FailureKind.INVALID_UTF8, None, f"invalid UTF-8: {exc}")
    except msgspec.DecodeError as exc:
        text = str(exc)
        kind = FailureKind.INVALID_UTF8 if "UTF-8" in text or "utf-8" in text else FailureKind.MALFORMED_JSON
        return Problem(kind, None, f"not a JSON object: {text}")


def _field_of(message: str) -> str | None:
    marker = "at `$."
    start = message.find(marker)
    if start < 0:
        return None
    return message[start + len(marker) :].rstrip("`")


def check(message: Message, implied_type: str | None = None) -> Problem | None:
    """The rules of the spec an accepted message must meet (type, ids, times)."""
    mtype = implied_type or message.type
    if mtype is None:
        return Problem(FailureKind.MISSING_FIELD, "type", "message has no `type`")
    if mtype not in MESSAGE_TYPES:
        return Problem(FailureKind.UNKNOWN_TYPE, "type", f"unknown message type {mtype!r}")
    if message.user_id in (None, "") and message.anonymous_id in (None, ""):
        return Problem(FailureKind.MISSING_FIELD, "userId", "message needs `userId` or `anonymousId`")
    if mtype == "track" and not message.event:
        return Problem(FailureKind.MISSING_FIELD, "event", "track message has no `event` name")
    if mtype == "group" and message.group_id in (None, ""):
        return Problem(FailureKind.MISSING_FIELD, "groupId", "group message has no `groupId`")
    if mtype == "alias" and message.previous_id in (None, ""):
        return Problem(FailureKind.MISSING_FIELD, "previousId", "alias message has no `previousId`")
    for field, value in (
        ("timestamp", message.timestamp),
        ("originalTimestamp", message.original_timestamp),
        ("sentAt", message.sent_at),
    ):
        if value is not None and parse_time(value) is None:
            return Problem(
                FailureKind.WRONG_TYPE, field, f"`{field}` is not an ISO-8601 time: {value[:40]!r}"
            )
    return None


def parse_time(value: str) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime (naive times are taken as UTC); None if invalid."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_micros(value: datetime) -> int:
    return int(value.timestamp()) * 1_000_000 + value.microsecond


def event_times_us(
    message: Message, received_at_us: int, batch_sent_at: str | None
) -> tuple[int, int | None]:
    """(timestamp, original_timestamp) in µs, with Segment's clock-skew correction.

    The client's time is ``timestamp`` (or ``originalTimestamp``); when the sender also said
    when it sent (``sentAt``, on the message or the batch), the client clock's offset is
    removed: ``timestamp = receivedAt − (sentAt − originalTimestamp)``. With no client time,
    the event happened when it was received.
    """
    original_text = message.timestamp or message.original_timestamp
    original = parse_time(original_text) if original_text else None
    if original is None:
        return received_at_us, None
    original_us = to_micros(original)
    sent_text = message.sent_at or batch_sent_at
    sent = parse_time(sent_text) if sent_text else None
    if sent is None:
        return original_us, original_us
    return received_at_us - (to_micros(sent) - original_us), original_us


def id_text(value: str | int | None) -> str | None:
    """Segment ids may arrive as numbers; tables store them as text."""
    if value is None or value == "":
        return None
    return str(value)
