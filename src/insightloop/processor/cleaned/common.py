"""The columns every event table shares, computed once per batch over all its events.

- ``id``, ``source``, ``user_id``, ``anonymous_id``, ``received_at``: as stage 1 recorded
  them in raw (ids already as text);
- ``timestamp``: raw ``event_time`` (clock-skew corrected; ``received_at`` when absent);
- ``original_timestamp``: the client's ``timestamp`` (or ``originalTimestamp``) as sent;
- ``sent_at``: the event's ``sentAt``, else its batch's (from ``delivery``);
- ``loaded_at``: processing time;
- ``context_*``: the event's ``context`` over its batch's ``context`` (from ``delivery``),
  merged key by key: for each key path the event's value wins, the batch's fills in.

Times are parsed by Arrow (C++); strings it cannot read (rare forms ``datetime`` accepts,
e.g. a naive time, taken as UTC) are parsed one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from insightloop.processor.cleaned.objects import Leaf, parse_objects, present
from insightloop.processor.cleaned.tables import ARROW_TIME
from insightloop.segment.message import Message, parse_time, to_micros


class _Delivery(msgspec.Struct):
    sentAt: str | None = None  # the wire name
    # Empty when absent (msgspec 0.22 rejects objects for a ``Raw | None`` field here).
    context: msgspec.Raw = msgspec.Raw()


_delivery_decoder = msgspec.json.Decoder(_Delivery)


@dataclass(slots=True)
class Common:
    """Shared columns over a batch's rows (name → array), its context leaves, and the rows
    whose ``context`` is not a JSON object."""

    columns: dict[str, pa.Array]
    context: list[Leaf]
    bad_context: list[int] = field(default_factory=list)


def build_common(raw: pa.Table, messages: Sequence[Message], loaded_at_us: int) -> Common:
    n = raw.num_rows
    received = raw.column("received_at").combine_chunks()
    event_time = raw.column("event_time").combine_chunks()
    sent_batch, batch_context = _deliveries(raw.column("delivery").combine_chunks())
    sent_own = parse_times([m.sent_at for m in messages])
    columns = {
        "id": raw.column("event_id").combine_chunks(),
        "source": raw.column("source").combine_chunks(),
        "user_id": raw.column("subject_user_id").combine_chunks(),
        "anonymous_id": raw.column("subject_anonymous_id").combine_chunks(),
        "timestamp": pc.coalesce(event_time, received),
        "original_timestamp": parse_times([m.timestamp or m.original_timestamp for m in messages]),
        "sent_at": sent_own if sent_batch is None else pc.coalesce(sent_own, sent_batch),
        "received_at": received,
        "loaded_at": pa.repeat(pa.scalar(loaded_at_us, ARROW_TIME), n),
    }
    own = parse_objects([m.context for m in messages], hint="context")
    context = [leaf for leaf in own.leaves if not leaf.empty]
    if batch_context:
        context.extend(_under(batch_context, own.leaves, n))
    return Common(columns, context, own.not_objects)


def _deliveries(delivery: pa.Array) -> tuple[pa.Array | None, list[Leaf]]:
    """The batch-level ``sentAt`` per row and the batch-level context leaves per row, each
    distinct ``delivery`` decoded once."""
    if delivery.null_count == len(delivery):
        return None, []
    encoded = pc.dictionary_encode(delivery)
    indices = encoded.indices
    decoded = [_decode_delivery(text) for text in encoded.dictionary.to_pylist()]
    sent: pa.Array | None = None
    if any(d.sentAt is not None for d in decoded):
        sent = parse_times([d.sentAt for d in decoded]).take(indices)
    leaves: list[Leaf] = []
    if any(d.context for d in decoded):
        parsed = parse_objects([d.context for d in decoded], hint="batch context")
        leaves = [leaf.take(indices) for leaf in parsed.leaves]
    return sent, leaves


def _decode_delivery(text: str) -> _Delivery:
    try:
        return _delivery_decoder.decode(text)
    except msgspec.DecodeError:
        return _Delivery()  # not ours to judge: the event itself is intact


def _under(batch: list[Leaf], own: list[Leaf], n: int) -> list[Leaf]:
    """The batch's context leaves, blanked where the event has a value at the same key path."""
    taken = present(own, n)
    out = []
    for leaf in batch:
        mask = taken.get(leaf.path)
        if mask is not None:
            leaf = Leaf(
                leaf.path, leaf.kind, pc.if_else(mask, pa.scalar(None, leaf.values.type), leaf.values)
            )
        if not leaf.empty:
            out.append(leaf)
    return out


def parse_times(texts: list[str | None]) -> pa.Array:
    """ISO-8601 strings → UTC microsecond timestamps (null for None or unreadable)."""
    strings = pa.array(texts, pa.string())
    if strings.null_count == len(strings):
        return pa.nulls(len(strings), ARROW_TIME)
    try:
        return pc.cast(strings, ARROW_TIME)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    micros: list[int | None] = []
    for text in texts:
        parsed = parse_time(text) if text else None
        micros.append(None if parsed is None else to_micros(parsed))
    return pa.array(micros, pa.int64()).cast(ARROW_TIME)
