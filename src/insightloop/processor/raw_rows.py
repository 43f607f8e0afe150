"""Stage 1's rows: log records (``collected.CollectedBatch``) → raw envelope rows.

One row per event and per rejection of each batch, in log order, with the event's exact
bytes as ``payload``. A log record that is not a ``CollectedBatch`` at all becomes one
``rejected`` row (kind ``malformed_json``) holding the record's first 64 KB: bad records
are data, and one of them must never stall the processor.

The hot path is one ``msgspec`` decode per event (``segment.message.decode``) and a few
list appends; columns become Arrow arrays once per batch. Nested objects stay undecoded,
except for ``context.groupId`` (a decode that skips every other key) and an identify's
``traits.email`` (only when a byte search finds ``"email"``).

``delivery`` holds, as JSON, what the transport added to the event: the ``type`` implied by
the endpoint when the body had none (or another), the batch's ``sentAt`` and the batch's
``context`` verbatim. Null when the transport added nothing.
"""

from __future__ import annotations

import array
import hashlib
import itertools
import time
from collections import Counter
from typing import Any

import msgspec
import orjson
import pyarrow as pa

from insightloop.collected import FORMAT_VERSION, MAX_REJECTED_BYTES, CollectedBatch, decode_batch
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA
from insightloop.segment.message import Message, Problem, decode, event_times_us, id_text
from insightloop.types import FailureKind, LogRecord

REJECTED_STREAM = "rejected"
#: The ``source`` of a row whose log record did not even say which source sent it.
UNKNOWN_SOURCE = "unknown"

_SEQ_FIELD = RAW_ARROW_SCHEMA.field("ingest_seq")
_ROW_SCHEMA = RAW_ARROW_SCHEMA.remove(RAW_ARROW_SCHEMA.get_field_index("ingest_seq"))


class _GroupRef(msgspec.Struct):
    groupId: str | int | None = None


class _EmailRef(msgspec.Struct):
    email: object = None


_group_decoder = msgspec.json.Decoder(_GroupRef)
_email_decoder = msgspec.json.Decoder(_EmailRef)


def rejection_id(origin: str) -> str:
    """A deterministic event id for a row that has no message id of its own."""
    return "rej-" + hashlib.sha256(origin.encode()).hexdigest()[:32]


def rejection_json(kind: str, field: str | None, reason: str) -> str:
    return orjson.dumps({"kind": kind, "field": field, "reason": reason}).decode()


def email_sha256(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _context_group_id(context: bytes | msgspec.Raw | None) -> str | None:
    # Decoding the Raw straight away (msgspec skips the other keys) is cheaper than first
    # copying it to bytes to look for the key. A groupId that is not a string or a number
    # names no account.
    if not context:
        return None
    try:
        return id_text(_group_decoder.decode(context).groupId)
    except msgspec.DecodeError:
        return None


def _traits_email_sha256(traits: msgspec.Raw | None) -> str | None:
    if not traits:
        return None
    data = bytes(traits)
    if b'"email"' not in data:
        return None
    try:
        email = _email_decoder.decode(data).email
    except msgspec.DecodeError:
        return None
    return email_sha256(email) if isinstance(email, str) and email.strip() else None


def _delivery_json(implied_type: str | None, sent_at: str | None, context: bytes | None) -> str | None:
    parts: list[bytes] = []
    if implied_type is not None:
        parts.append(b'"type":' + orjson.dumps(implied_type))
    if sent_at is not None:
        parts.append(b'"sentAt":' + orjson.dumps(sent_at))
    if context:
        parts.append(b'"context":' + context)
    if not parts:
        return None
    return (b"{" + b",".join(parts) + b"}").decode("utf-8", "replace")


class RawRows:
    """Raw rows accumulating from log records, plus the decoded messages aligned with them
    (None for rejected rows) and the last offset read per shard."""

    def __init__(self) -> None:
        self.event_id: list[str] = []
        self.source: list[str] = []
        self.stream: list[str] = []
        self.schema_name: list[str | None] = []
        self.event_time: list[int | None] = []
        self.received_at: list[int] = []
        self.user_id: list[str | None] = []
        self.anonymous_id: list[str | None] = []
        self.account_id: list[str | None] = []
        self.email_sha256: list[str | None] = []
        self.payload: list[bytes] = []
        self.delivery: list[str | None] = []
        self.rejection: list[str | None] = []
        self.origin: list[str] = []
        self.messages: list[Message | None] = []
        #: Last offset included, per shard.
        self.positions: dict[str, int] = {}
        #: Rejected rows by failure kind (for metrics).
        self.rejected: Counter[str] = Counter()
        self.records = 0

    def __len__(self) -> int:
        return len(self.event_id)

    def add(self, record: LogRecord) -> int:
        """Add one log record's rows; returns how many rows it made."""
        position = record.position
        self.positions[position.shard] = position.offset
        self.records += 1
        prefix = f"log:{position.shard}:{position.offset}:"
        try:
            batch = decode_batch(record.data)
        except msgspec.DecodeError as exc:
            return self._add_garbage(record.data, prefix, f"log record is not a collected batch: {exc}")
        if batch.version != FORMAT_VERSION:
            return self._add_garbage(
                record.data, prefix, f"collected batch format version {batch.version} is not {FORMAT_VERSION}"
            )
        return self._add_batch(batch, prefix)

    def _add_batch(self, batch: CollectedBatch, prefix: str) -> int:
        received_at = batch.received_at_us
        sent_at = batch.sent_at
        context = batch.context
        plain_delivery = _delivery_json(None, sent_at, context)
        typed_delivery: dict[str, str | None] = {}
        batch_account = _context_group_id(context)
        event_id, stream, schema_name = self.event_id, self.stream, self.schema_name
        event_time, user_id, anonymous_id = self.event_time, self.user_id, self.anonymous_id
        account_id, email, payload = self.account_id, self.email_sha256, self.payload
        delivery, origin, messages = self.delivery, self.origin, self.messages
        rejection = self.rejection
        good = 0
        for index, event in enumerate(batch.events):
            message = decode(event.raw)
            if isinstance(message, Problem):
                self._add_rejected(
                    batch, event.message_id, f"{prefix}{index}", message.kind, message.field, message.reason
                )
                self.payload[-1] = event.raw
                continue
            mtype = event.type
            good += 1
            event_id.append(event.message_id)
            stream.append(mtype)
            schema_name.append(message.event if mtype == "track" else mtype)
            event_time.append(event_times_us(message, received_at, sent_at)[0])
            user_id.append(id_text(message.user_id))
            anonymous_id.append(id_text(message.anonymous_id))
            if mtype == "group":
                account_id.append(id_text(message.group_id))
            else:
                account_id.append(_context_group_id(message.context) or batch_account)
            email.append(_traits_email_sha256(message.traits) if mtype == "identify" else None)
            payload.append(event.raw)
            if message.type == mtype:
                delivery.append(plain_delivery)
            else:
                if mtype not in typed_delivery:
                    typed_delivery[mtype] = _delivery_json(mtype, sent_at, context)
                delivery.append(typed_delivery[mtype])
            rejection.append(None)
            origin.append(f"{prefix}{index}")
            messages.append(message)
        # Same for every row of the batch, so the rows rejected above may be counted here.
        self.source.extend([batch.source] * good)
        self.received_at.extend([received_at] * good)
        base = len(batch.events)
        for offset, rejected in enumerate(batch.rejected):
            origin_text = f"{prefix}{base + offset}"
            self._add_rejected(
                batch, rejection_id(origin_text), origin_text, rejected.kind, rejected.field, rejected.reason
            )
            self.payload[-1] = rejected.raw[:MAX_REJECTED_BYTES]
        return base + len(batch.rejected)

    def _add_rejected(
        self, batch: CollectedBatch, event_id: str, origin: str, kind: str, field: str | None, reason: str
    ) -> None:
        self._add_row_of_rejection(
            event_id=event_id,
            source=batch.source,
            received_at=batch.received_at_us,
            delivery=_delivery_json(None, batch.sent_at, batch.context),
            origin=origin,
            rejection=rejection_json(kind, field, reason),
        )
        self.rejected[kind] += 1

    def _add_garbage(self, data: bytes, prefix: str, reason: str) -> int:
        origin = f"{prefix}0"
        self._add_row_of_rejection(
            event_id=rejection_id(origin),
            source=UNKNOWN_SOURCE,
            received_at=time.time_ns() // 1000,
            delivery=None,
            origin=origin,
            rejection=rejection_json(FailureKind.MALFORMED_JSON, None, reason),
        )
        self.payload[-1] = data[:MAX_REJECTED_BYTES]
        self.rejected[FailureKind.MALFORMED_JSON] += 1
        return 1

    def _add_row_of_rejection(
        self,
        *,
        event_id: str,
        source: str,
        received_at: int,
        delivery: str | None,
        origin: str,
        rejection: str,
    ) -> None:
        self.event_id.append(event_id)
        self.source.append(source)
        self.stream.append(REJECTED_STREAM)
        self.schema_name.append(None)
        self.event_time.append(None)
        self.received_at.append(received_at)
        self.user_id.append(None)
        self.anonymous_id.append(None)
        self.account_id.append(None)
        self.email_sha256.append(None)
        self.payload.append(b"")
        self.delivery.append(delivery)
        self.rejection.append(rejection)
        self.origin.append(origin)
        self.messages.append(None)

    def to_arrow(self, ingest_seq: int) -> pa.Table:
        """The rows as a table of ``RAW_ARROW_SCHEMA``, numbered with ``ingest_seq``."""
        columns: dict[str, list[Any]] = {
            "event_id": self.event_id,
            "source": self.source,
            "stream": self.stream,
            "schema_name": self.schema_name,
            "schema_version": [None] * len(self),  # contracts are stage 2's business
            "event_time": self.event_time,
            "received_at": self.received_at,
            "subject_user_id": self.user_id,
            "subject_anonymous_id": self.anonymous_id,
            "subject_account_id": self.account_id,
            "subject_email_sha256": self.email_sha256,
            "delivery": self.delivery,
            "rejection": self.rejection,
            "origin": self.origin,
        }
        arrays = [
            binary_array(self.payload)
            if field.name == "payload"
            else pa.array(columns[field.name], type=field.type)
            for field in _ROW_SCHEMA
        ]
        return with_ingest_seq(pa.Table.from_arrays(arrays, schema=_ROW_SCHEMA), ingest_seq)


def binary_array(values: list[bytes]) -> pa.Array:
    """A ``large_binary`` array of ``values`` built from one joined buffer. ``pa.array`` grows
    its buffer as it goes, which for ~75 MB of payloads cost 10x more (fresh pages,
    reallocations) than this single join."""
    offsets = array.array("q", itertools.accumulate(map(len, values), initial=0))
    data = b"".join(values)
    return pa.Array.from_buffers(
        pa.large_binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def with_ingest_seq(rows: pa.Table, ingest_seq: int) -> pa.Table:
    """``rows`` (raw columns without ``ingest_seq``, or with it) numbered with ``ingest_seq``."""
    if _SEQ_FIELD.name in rows.column_names:
        rows = rows.drop_columns([_SEQ_FIELD.name])
    seq = pa.repeat(pa.scalar(ingest_seq, pa.int64()), rows.num_rows)
    return rows.append_column(_SEQ_FIELD, seq)
