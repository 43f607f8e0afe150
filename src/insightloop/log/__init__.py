"""The durable, partitioned log between sources and the stream processor.

The interface is shaped like Kinesis Data Streams and Kafka: a log has shards; a record is
appended to one shard and gets a position there; consumers read a shard from a position
they store themselves (the processor stores them in its Iceberg commits). ``append``
returns only once the records are durable: the collector acknowledges after it.

Implementations: ``local.LocalLog`` (files under the data directory, fsync'd); Kinesis
arrives in a later issue and must fit this interface unchanged.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import msgspec

from insightloop.types import LogPosition, LogRecord


class ShardLag(msgspec.Struct, frozen=True):
    """How far a consumer at ``position`` is behind the end of a shard.

    ``records`` is None where the log cannot count them (Kinesis reports time only)."""

    shard: str
    records: int | None
    seconds: float | None


class Log(abc.ABC):
    """A partitioned, durable, append-only log."""

    @abc.abstractmethod
    def shards(self) -> list[str]:
        """The shard ids, in a stable order."""

    @abc.abstractmethod
    def append(self, shard: str, records: Sequence[bytes]) -> list[LogPosition]:
        """Append records to a shard; returns once they are durable, with their positions.

        Raises ``LogFullError`` when consumers are too far behind (back-pressure)."""

    @abc.abstractmethod
    def read(
        self, shard: str, after: int | None, max_records: int = 1000, max_bytes: int = 64 << 20
    ) -> list[LogRecord]:
        """Records of ``shard`` after offset ``after`` (from the start when None), in order,
        at most ``max_records`` and about ``max_bytes``; empty when there is nothing new."""

    @abc.abstractmethod
    def lag(self, shard: str, after: int | None) -> ShardLag:
        """How far a consumer that has read up to ``after`` is behind."""

    @abc.abstractmethod
    def trim(self, shard: str, before: int) -> None:
        """Allow records before offset ``before`` to be deleted (retention)."""

    @abc.abstractmethod
    def save_checkpoint(self, consumer: str, shard: str, offset: int) -> None:
        """Record, advisorily, that ``consumer`` has durably processed ``shard`` up to ``offset``.

        Not the source of truth (the processor's Iceberg commits are): used for lag, the
        collector's back-pressure and retention. Cheap; may be lost in a crash."""

    @abc.abstractmethod
    def checkpoint(self, consumer: str, shard: str) -> int | None:
        """The last offset ``consumer`` saved for ``shard``, or None."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and locks."""
