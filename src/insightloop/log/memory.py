"""An in-memory log for unit tests and demos of one process: not durable."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from insightloop.errors import LogFullError
from insightloop.log import Log, ShardLag
from insightloop.types import LogPosition, LogRecord


class MemoryLog(Log):
    def __init__(self, shards: int = 1, max_records: int | None = None) -> None:
        self._shards = {f"shard-{i}": list[bytes]() for i in range(shards)}
        self._base = dict.fromkeys(self._shards, 0)
        self._max = max_records
        self._lock = threading.Lock()
        self._checkpoints: dict[tuple[str, str], int] = {}

    def shards(self) -> list[str]:
        return list(self._shards)

    def append(self, shard: str, records: Sequence[bytes]) -> list[LogPosition]:
        with self._lock:
            stored = self._shards[shard]
            if self._max is not None and len(stored) + len(records) > self._max:
                raise LogFullError(f"memory log shard {shard} is full ({self._max} records)")
            start = self._base[shard] + len(stored)
            stored.extend(records)
            return [LogPosition(shard, start + i) for i in range(len(records))]

    def read(
        self, shard: str, after: int | None, max_records: int = 1000, max_bytes: int = 64 << 20
    ) -> list[LogRecord]:
        with self._lock:
            base = self._base[shard]
            first = max(0 if after is None else after + 1 - base, 0)
            out: list[LogRecord] = []
            size = 0
            for i, data in enumerate(self._shards[shard][first : first + max_records]):
                if out and size + len(data) > max_bytes:
                    break
                out.append(LogRecord(LogPosition(shard, base + first + i), data))
                size += len(data)
            return out

    def lag(self, shard: str, after: int | None) -> ShardLag:
        with self._lock:
            end = self._base[shard] + len(self._shards[shard])
        done = 0 if after is None else after + 1
        return ShardLag(shard, max(end - done, 0), None)

    def trim(self, shard: str, before: int) -> None:
        with self._lock:
            drop = before - self._base[shard]
            if drop > 0:
                del self._shards[shard][:drop]
                self._base[shard] = before

    def save_checkpoint(self, consumer: str, shard: str, offset: int) -> None:
        self._checkpoints[consumer, shard] = offset

    def checkpoint(self, consumer: str, shard: str) -> int | None:
        return self._checkpoints.get((consumer, shard))
