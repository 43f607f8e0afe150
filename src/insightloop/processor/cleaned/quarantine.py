"""``quarantine.sdk_events``: raw rows that could not become cleaned rows, with why.

Two sources: rows the collector rejected (raw ``rejection``: its kind, field and reason),
and rows that fail here: an unknown message type, a payload that does not decode, or a
``context``/``properties``/``traits`` that is not a JSON object, or an event that breaks its
contract (``contract`` and ``violations`` say which and how; null on rows of other kinds,
and on rows written before these columns were added in place). Each row keeps the exact
payload bytes, so it can be replayed once a producer or a rule is fixed.

Quarantined rows are not deduplicated (every bad copy is evidence) and do not count as seen:
a corrected retry with the same message id is accepted. Partitioned by ``day(received_at)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pyarrow as pa

from insightloop.processor.cleaned.tables import ARROW_TIME, QUARANTINE_SPEC, arrow_type_of


@dataclass(frozen=True, slots=True)
class Failure:
    """Why the raw row at ``index`` goes to quarantine."""

    index: int
    kind: str
    field: str | None
    reason: str
    #: The contract tried (``track/report_created/1-0-1``), for contract failures.
    contract: str | None = None
    #: Every violation, as JSON text: ``[{"pointer", "keyword", "message"}, …]``.
    violations: str | None = None


def rejection_failure(index: int, rejection: str | None) -> Failure:
    """The collector's verdict (raw ``rejection`` JSON) as a Failure."""
    try:
        verdict = orjson.loads(rejection) if rejection else None
    except orjson.JSONDecodeError:
        verdict = None
    if not isinstance(verdict, dict):
        return Failure(index, "rejected", None, rejection or "rejected by the collector (no reason recorded)")
    field = verdict.get("field")
    return Failure(
        index,
        str(verdict.get("kind") or "rejected"),
        None if field is None else str(field),
        str(verdict.get("reason") or ""),
    )


def quarantine_rows(raw: pa.Table, failures: list[Failure], quarantined_at_us: int) -> pa.Table:
    """Quarantine rows for ``failures`` (indices into ``raw``)."""
    indices = pa.array([f.index for f in failures], pa.int64())
    picked = raw.take(indices)
    columns = {
        "event_id": picked.column("event_id"),
        "source": picked.column("source"),
        "stream": picked.column("stream"),
        "kind": pa.array([f.kind for f in failures], pa.string()),
        "field": pa.array([f.field for f in failures], pa.string()),
        "reason": pa.array([f.reason for f in failures], pa.string()),
        "payload": picked.column("payload"),
        "received_at": picked.column("received_at"),
        "origin": picked.column("origin"),
        "ingest_seq": picked.column("ingest_seq"),
        "quarantined_at": pa.repeat(pa.scalar(quarantined_at_us, ARROW_TIME), len(failures)),
        "contract": pa.array([f.contract for f in failures], pa.string()),
        "violations": pa.array([f.violations for f in failures], pa.string()),
    }
    arrays = [columns[name].cast(arrow_type_of(t)) for name, t, _ in QUARANTINE_SPEC.columns]
    return pa.Table.from_arrays(arrays, names=list(columns))
