"""A file's rows as raw rows (Arrow, in ``raw.export_rows``' schema) and as staged rows.

Rows are numbered (``row``, in ``event_id`` ``<sha256>:<row>``) in the order the reader
parsed them; rows the CSV parser refused come after them, keep their line's text as payload,
and their delivery also names their ``line`` (record number in the file, the header being 1).

The columns whose value is the file's (source, entity, contract version, the delivery and
origin of its good rows) are built as dictionary arrays of one value and handed to the
Parquet writer as such: neither repeated in memory nor hashed again to encode them. A good
row's number is in its ``event_id``; its delivery and origin name the file only. A rejected
row's also name its number (and line), for quarantine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from insightloop.exports.reader import ParserReject, typed_name
from insightloop.exports.staging import LOADED_AT, REJECTED, ROW
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA
from insightloop.processor.raw_rows import REJECTED_STREAM

#: The stream of a file's good rows in raw.
EXPORT_STREAM = "export"
#: Raw columns written as dictionaries: a file's constants, and the stream.
DICTIONARY_COLUMNS = ("source", "stream", "schema_name", "schema_version", "delivery", "origin")
WRITE_SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.dictionary(pa.int32(), f.type), f.nullable, f.metadata)
        if f.name in DICTIONARY_COLUMNS
        else f
        for f in RAW_ARROW_SCHEMA
    ]
)
#: Text of the rows that need their own (the rejected ones), given the rows' mask (None: all).
Own = Callable[[pa.Array | None], pa.Array]


class RawColumns:
    def __init__(
        self,
        *,
        uri: str,
        sha256: str,
        source: str,
        entity: str,
        period: str,
        schema_version: str,
        seq: int,
        received_us: int,
    ) -> None:
        self._sha256 = sha256
        self._constants = {"source": source, "schema_name": entity, "schema_version": schema_version}
        self._seq = seq
        self._received_us = received_us
        self._next_row = 1
        quoted = msgspec.json.encode(uri).decode()
        self._delivery = f'{{"file":{quoted},"sha256":"{sha256}","period":"{period}"}}'
        self._delivery_prefix = self._delivery[:-1] + ',"row":'
        self._origin = f"file:{uri}"

    def parsed(self, batch: pa.RecordBatch, typed: Sequence[str]) -> tuple[pa.Table, pa.Table]:
        """A batch of the reader's rows as raw rows, and as staged rows (the typed values of
        ``typed``, the cleaned columns, by name; the row's number and load time)."""
        numbers = self._numbers(batch.num_rows)
        rejection = batch.column("rejection")
        good = pc.is_null(rejection)
        raw = self._table(
            numbers,
            good,
            pc.cast(batch.column("payload"), pa.binary()),
            rejection,
            {name: batch.column(name) for name in _FROM_READER},
        )
        staged = {name: batch.column(typed_name(i)) for i, name in enumerate(typed)}
        staged[ROW] = numbers
        staged[LOADED_AT] = raw.column("received_at")
        staged[REJECTED] = pc.invert(good)
        return raw, pa.Table.from_pydict(staged)

    def refused(self, rejects: Sequence[ParserReject]) -> pa.Table:
        """Rows the parser refused, numbered after the parsed rows."""
        count = len(rejects)
        rejection = pa.array(
            [
                msgspec.json.encode({"kind": r.kind, "field": r.column, "reason": r.reason}).decode()
                for r in rejects
            ],
            pa.string(),
        )
        payload = pa.array([r.text.encode() for r in rejects], pa.binary())
        lines = pa.array([',"line":' + str(r.line) for r in rejects], pa.string())
        nulls = {name: pa.nulls(count, RAW_ARROW_SCHEMA.field(name).type) for name in _FROM_READER}
        return self._table(self._numbers(count), pa.repeat(False, count), payload, rejection, nulls, lines)

    def _numbers(self, count: int) -> pa.Array:
        start = self._next_row
        self._next_row += count
        ones = pa.repeat(pa.scalar(1, pa.int64()), count)
        return pc.add(pc.cumulative_sum(ones), start - 1)

    def _table(
        self,
        numbers: pa.Array,
        good: pa.Array,
        payload: pa.Array,
        rejection: pa.Array,
        read: dict[str, pa.Array],
        lines: pa.Array | None = None,
    ) -> pa.Table:
        count = len(numbers)
        text = pc.cast(numbers, pa.string())
        bad = pc.invert(good)

        def delivery(mask: pa.Array | None) -> pa.Array:
            tail = _masked(lines, mask) if lines is not None else ""
            return pc.binary_join_element_wise(self._delivery_prefix, _masked(text, mask), tail, "}", "")

        def origin(mask: pa.Array | None) -> pa.Array:
            return pc.binary_join_element_wise(self._origin + ":", _masked(text, mask), "")

        columns = {
            "event_id": pc.binary_join_element_wise(self._sha256 + ":", text, ""),
            **{name: _constant(value, name, count) for name, value in self._constants.items()},
            "stream": _two(EXPORT_STREAM, REJECTED_STREAM, bad),
            **{name: pc.cast(array, RAW_ARROW_SCHEMA.field(name).type) for name, array in read.items()},
            "received_at": pa.repeat(pa.scalar(self._received_us, pa.int64()), count).cast(
                RAW_ARROW_SCHEMA.field("received_at").type
            ),
            "payload": payload,
            "delivery": _own_if(bad, self._delivery, delivery, "delivery"),
            "rejection": rejection,
            "origin": _own_if(bad, self._origin, origin, "origin"),
            "ingest_seq": pa.repeat(pa.scalar(self._seq, pa.int64()), count),
        }
        return pa.Table.from_pydict(columns, schema=WRITE_SCHEMA)


#: Raw columns the reader's query computes.
_FROM_READER = (
    "event_time",
    "subject_user_id",
    "subject_anonymous_id",
    "subject_account_id",
    "subject_email_sha256",
)


def _dictionary(indices: pa.Array, values: pa.Array, name: str) -> pa.DictionaryArray:
    kind = RAW_ARROW_SCHEMA.field(name).type
    return pa.DictionaryArray.from_arrays(indices, values.cast(kind))


def _constant(value: str, name: str, count: int) -> pa.DictionaryArray:
    return _dictionary(pa.repeat(pa.scalar(0, pa.int32()), count), pa.array([value]), name)


def _two(first: str, second: str, second_mask: pa.Array) -> pa.DictionaryArray:
    return _dictionary(pc.cast(second_mask, pa.int32()), pa.array([first, second]), "stream")


def _own_if(bad: pa.Array, same: str, own: Own, name: str) -> pa.DictionaryArray:
    """``same`` for the good rows; for the bad ones (rare), ``own(mask)``: a text of their own."""
    count = len(bad)
    if not pc.any(bad).as_py():
        return _constant(same, name, count)
    # Bad row i gets dictionary entry 1 + (how many bad rows come before it).
    ranks = pc.cumulative_sum(pc.cast(bad, pa.int32()))
    indices = pc.cast(pc.if_else(bad, ranks, 0), pa.int32())
    values = pa.concat_arrays([pa.array([same], pa.string()), own(bad).cast(pa.string())])
    return _dictionary(indices, values, name)


def _masked(values: pa.Array, mask: pa.Array | None) -> pa.Array:
    return values if mask is None else pc.filter(values, mask)
