"""The shared vocabulary: envelopes, good and bad records, log positions.

Imports nothing else of insightloop. Everything downstream of a source speaks these types.
"""

from __future__ import annotations

import enum

import msgspec


class LogPosition(msgspec.Struct, frozen=True, order=True):
    """Where a record sits in a partitioned log: a shard and an offset within it."""

    shard: str
    offset: int

    def __str__(self) -> str:
        return f"{self.shard}:{self.offset}"


class LogRecord(msgspec.Struct, frozen=True):
    """One record read back from the log, with the position it was stored at."""

    position: LogPosition
    data: bytes


class SubjectKeys(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who the data is about; deletion requests are matched against these keys."""

    user_id: str | None = None
    anonymous_id: str | None = None
    account_id: str | None = None
    email_sha256: str | None = None


class Envelope(msgspec.Struct, frozen=True):
    """One event as every source hands it downstream.

    ``payload`` is the exact bytes received; ``origin`` says where it came from
    (``log:<shard>:<offset>:<index>``, ``file:<path>:<row>``, ``lsn:<lsn>``).
    Times are microseconds since the Unix epoch, UTC.
    """

    event_id: str
    source: str
    stream: str
    schema_name: str
    schema_version: str | None
    event_time_us: int
    received_at_us: int
    subject: SubjectKeys
    payload: bytes
    origin: str


class FailureKind(enum.StrEnum):
    """Why a record could not be accepted. Stable names: they are stored and alerted on."""

    MALFORMED_JSON = "malformed_json"
    INVALID_UTF8 = "invalid_utf8"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    TOO_LARGE = "too_large"
    TOO_DEEP = "too_deep"
    UNKNOWN_TYPE = "unknown_type"
    CONTRACT_VIOLATION = "contract_violation"
    NO_CONTRACT = "no_contract"
    TYPE_CONFLICT = "type_conflict"


class BadRecord(msgspec.Struct, frozen=True):
    """A record that failed parsing or its contract, kept as data with a typed reason.

    ``payload`` is the original bytes, truncated to a bounded size by whoever builds it.
    """

    kind: FailureKind
    reason: str
    source: str
    stream: str
    payload: bytes
    received_at_us: int
    origin: str
    field: str | None = None


class Batch(msgspec.Struct):
    """The good and the bad of one step, side by side."""

    good: list[Envelope] = msgspec.field(default_factory=list)
    bad: list[BadRecord] = msgspec.field(default_factory=list)
