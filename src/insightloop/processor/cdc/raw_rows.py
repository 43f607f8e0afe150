"""Stage 1's rows for CDC: log records (``cdc.changes.ChangeBatch``) → ``raw.cdc_changes``.

One row per change, in log order, with the envelope's exact bytes as ``payload``:
``event_id`` the change's id, ``source`` the batch's, ``stream`` and ``schema_name``
``<schema>.<table>``, ``event_time`` the commit time, ``received_at`` when the reader read
it, ``origin`` ``log:<shard>:<offset>:<index>`` and ``delivery`` ``{"lsn": …, "op": …}``.

Nothing is dropped, and raw alone is enough to rebuild stage 2:
- a change whose payload is not a ``ChangeEvent`` becomes a ``rejected`` row (its bytes,
  truncated to 64 KB, and a ``rejection`` JSON naming the table and LSN);
- a ``SnapshotDone`` mark becomes a row of stream ``snapshot_done`` (``schema_name`` the
  table, ``payload`` the mark as JSON), after the changes of its batch, as it applies;
- a ``ColumnFill`` becomes a row of stream ``column_fill`` (``schema_name`` the table,
  ``payload`` the fill as JSON), after the changes of its batch, as it applies;
- a log record that is not a ``ChangeBatch`` becomes one ``rejected`` row (kind
  ``malformed_json``) holding its first 64 KB.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

import msgspec
import orjson
import pyarrow as pa

from insightloop.cdc.changes import (
    FORMAT_VERSION,
    ChangeBatch,
    ColumnFill,
    SnapshotDone,
    decode_batch,
    decode_event,
)
from insightloop.collected import MAX_REJECTED_BYTES
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA
from insightloop.processor.raw_rows import (
    REJECTED_STREAM,
    UNKNOWN_SOURCE,
    binary_array,
    rejection_id,
    rejection_json,
    with_ingest_seq,
)
from insightloop.segment.message import Message
from insightloop.types import FailureKind, LogRecord

#: The raw table of CDC changes (one per kind of source: see ``lake.raw_table``).
CDC_CHANGES = "raw.cdc_changes"
#: The ``stream`` of a row carrying a ``SnapshotDone`` mark.
SNAPSHOT_DONE_STREAM = "snapshot_done"
#: The ``stream`` of a row carrying a ``ColumnFill``.
COLUMN_FILL_STREAM = "column_fill"

_ROW_SCHEMA = RAW_ARROW_SCHEMA.remove(RAW_ARROW_SCHEMA.get_field_index("ingest_seq"))
_mark_encoder = msgspec.json.Encoder()
_mark_decoder = msgspec.json.Decoder(SnapshotDone)


def encode_mark(mark: SnapshotDone) -> bytes:
    """A ``SnapshotDone`` as the JSON a ``snapshot_done`` raw row carries."""
    return _mark_encoder.encode({"table": mark.table, "lsn": mark.lsn, "rows": mark.rows})


def decode_mark(payload: bytes) -> SnapshotDone:
    data = orjson.loads(payload)
    return SnapshotDone(str(data["table"]), int(data["lsn"]), int(data["rows"]))


def mark_event_id(mark: SnapshotDone) -> str:
    return f"snapshot-done:{mark.table}:{mark.lsn}"


_fill_decoder = msgspec.json.Decoder(ColumnFill)


def encode_fill(fill: ColumnFill) -> bytes:
    """A ``ColumnFill`` as the JSON a ``column_fill`` raw row carries."""
    return _mark_encoder.encode(
        {"table": fill.table, "column": fill.column, "type": fill.type, "value": fill.value, "lsn": fill.lsn}
    )


def decode_fill(payload: bytes) -> ColumnFill:
    data = orjson.loads(payload)
    return ColumnFill(
        str(data["table"]), str(data["column"]), str(data["type"]), data["value"], int(data["lsn"])
    )


def fill_event_id(fill: ColumnFill) -> str:
    return f"column-fill:{fill.table}:{fill.column}:{fill.lsn}"


class CdcRawRows:
    """Raw rows of CDC log records (an ``intake.LogRows``)."""

    def __init__(self) -> None:
        self._columns: dict[str, list[object]] = {name: [] for name in _ROW_SCHEMA.names}
        self._payload: list[bytes] = []
        self.positions: dict[str, int] = {}
        self.rejected: Counter[str] = Counter()
        self.records = 0

    @property
    def messages(self) -> Sequence[Message | None] | None:
        return None  # stage 2 decodes change envelopes itself

    def __len__(self) -> int:
        return len(self._payload)

    def add(self, record: LogRecord) -> int:
        position = record.position
        self.positions[position.shard] = position.offset
        self.records += 1
        prefix = f"log:{position.shard}:{position.offset}:"
        try:
            batch = decode_batch(record.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return self._garbage(record.data, prefix, f"log record is not a change batch: {exc}")
        if batch.version != FORMAT_VERSION:
            return self._garbage(
                record.data, prefix, f"change batch format version {batch.version} is not {FORMAT_VERSION}"
            )
        return self._add_batch(batch, prefix)

    def _add_batch(self, batch: ChangeBatch, prefix: str) -> int:
        for index, change in enumerate(batch.changes):
            origin = f"{prefix}{index}"
            delivery = f'{{"lsn":{change.lsn},"op":{orjson.dumps(change.op).decode()}}}'
            try:
                decode_event(change.payload)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                reason = f"change {change.event_id} of {change.table} at lsn {change.lsn}: {exc}"
                self._row(
                    change.event_id or rejection_id(origin), batch.source, REJECTED_STREAM, change.table,
                    change.commit_ts_us, batch.read_at_us, change.payload[:MAX_REJECTED_BYTES], delivery,
                    rejection_json(FailureKind.MALFORMED_JSON, "payload", reason), origin,
                )  # fmt: skip
                self.rejected[FailureKind.MALFORMED_JSON] += 1
                continue
            self._row(
                change.event_id, batch.source, change.table, change.table, change.commit_ts_us,
                batch.read_at_us, change.payload, delivery, None, origin,
            )  # fmt: skip
        base = len(batch.changes)
        for fill in batch.column_fills:
            delivery = f'{{"lsn":{fill.lsn}}}'
            self._row(
                fill_event_id(fill), batch.source, COLUMN_FILL_STREAM, fill.table, None,
                batch.read_at_us, encode_fill(fill), delivery, None, f"{prefix}{base}",
            )  # fmt: skip
            base += 1
        for offset, mark in enumerate(batch.snapshot_done):
            delivery = f'{{"lsn":{mark.lsn}}}'
            self._row(
                mark_event_id(mark), batch.source, SNAPSHOT_DONE_STREAM, mark.table, None,
                batch.read_at_us, encode_mark(mark), delivery, None, f"{prefix}{base + offset}",
            )  # fmt: skip
        return base + len(batch.snapshot_done)

    def _garbage(self, data: bytes, prefix: str, reason: str) -> int:
        origin = f"{prefix}0"
        self._row(
            rejection_id(origin), UNKNOWN_SOURCE, REJECTED_STREAM, None, None, time.time_ns() // 1000,
            data[:MAX_REJECTED_BYTES], None, rejection_json(FailureKind.MALFORMED_JSON, None, reason), origin,
        )  # fmt: skip
        self.rejected[FailureKind.MALFORMED_JSON] += 1
        return 1

    def _row(
        self,
        event_id: str,
        source: str,
        stream: str,
        schema_name: str | None,
        event_time: int | None,
        received_at: int,
        payload: bytes,
        delivery: str | None,
        rejection: str | None,
        origin: str,
    ) -> None:
        c = self._columns
        c["event_id"].append(event_id)
        c["source"].append(source)
        c["stream"].append(stream)
        c["schema_name"].append(schema_name)
        c["schema_version"].append(None)
        c["event_time"].append(event_time)
        c["received_at"].append(received_at)
        for name in ("subject_user_id", "subject_anonymous_id", "subject_account_id", "subject_email_sha256"):
            c[name].append(None)
        c["delivery"].append(delivery)
        c["rejection"].append(rejection)
        c["origin"].append(origin)
        self._payload.append(payload)

    def to_arrow(self, ingest_seq: int) -> pa.Table:
        arrays = [
            binary_array(self._payload)
            if field.name == "payload"
            else pa.array(self._columns[field.name], type=field.type)
            for field in _ROW_SCHEMA
        ]
        return with_ingest_seq(pa.Table.from_arrays(arrays, schema=_ROW_SCHEMA), ingest_seq)
