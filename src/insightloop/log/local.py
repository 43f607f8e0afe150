"""A durable log on the local disk: a directory per shard, segment files of framed records.

Layout under ``root``::

    shard-0/00000000000000000000.log    segments, named by the first offset they hold
    shard-0/writer.lock                 flock'd by the one process that appends to the shard
    shard-0/checkpoint-<consumer>.json  advisory consumer positions

A record is framed as ``length (u32 LE) | crc32 of length+body (u32 LE) | body``. One
``append`` writes its whole batch with one ``write`` and one ``fdatasync``: that is the
durability point. A crash can only tear the end of the last segment; the next writer cuts
such a tail away. Readers take no lock: they return only complete, CRC-valid records and
stop at an incomplete tail, which may still be being written.
"""

from __future__ import annotations

import bisect
import enum
import fcntl
import itertools
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from insightloop.errors import LogBusyError, LogCorruptError
from insightloop.log import Log, ShardLag
from insightloop.types import LogPosition, LogRecord

_LENGTH = struct.Struct("<I")
_HEADER = struct.Struct("<II")
_CHUNK = 1 << 20  # the most read from a file at once (unless one record is bigger)
_FIRST_CHUNK = 64 << 10  # the first read of a call: small, for reads of a few records
_SUFFIX = ".log"
_CONSUMER = re.compile(r"[A-Za-z0-9._-]+")


def _frame(records: Sequence[bytes]) -> bytes:
    parts: list[bytes] = []
    for data in records:
        length = _LENGTH.pack(len(data))
        parts += (length, _LENGTH.pack(zlib.crc32(data, zlib.crc32(length))), data)
    return b"".join(parts)


class _Stop(enum.Enum):
    LIMIT = "a limit was reached"
    END = "the file ends after a complete record"
    TORN = "the file ends inside a record"
    BAD = "a complete record fails its CRC check"


def _read_frames(
    fd: int, pos: int, max_records: int, max_bytes: int, first_may_exceed: bool = True
) -> tuple[list[bytes], int, _Stop]:
    """The valid records of a segment from byte ``pos``, where they stop, and why."""
    out: list[bytes] = []
    size = 0
    file_end = os.fstat(fd).st_size
    want = _FIRST_CHUNK
    while True:
        buf = os.pread(fd, min(want, file_end - pos), pos) if pos < file_end else b""
        i = 0
        while i + _HEADER.size <= len(buf):
            length, crc = _HEADER.unpack_from(buf, i)
            end = i + _HEADER.size + length
            if end > len(buf):
                break
            if len(out) >= max_records or ((out or not first_may_exceed) and size + length > max_bytes):
                return out, pos + i, _Stop.LIMIT
            body = buf[i + _HEADER.size : end]
            if zlib.crc32(body, zlib.crc32(buf[i : i + _LENGTH.size])) != crc:
                return out, pos + i, _Stop.BAD
            out.append(body)
            size += length
            i = end
        pos += i
        if pos >= file_end:
            return out, pos, _Stop.END
        if i:
            want = min(max(want, _FIRST_CHUNK) * 2, _CHUNK)  # the chunk ended inside a record: read on
            continue
        need = _HEADER.size + _LENGTH.unpack_from(buf)[0] if len(buf) >= _HEADER.size else 0
        if not want < need <= file_end - pos:  # incomplete (or cut shorter while we read)
            return out, pos, _Stop.TORN
        want = need  # one record bigger than a chunk


def _skip(fd: int, pos: int, count: int) -> tuple[int, int]:
    """Walk up to ``count`` complete records from byte ``pos`` reading headers only;
    returns the byte position reached and how many records were passed."""
    size = os.fstat(fd).st_size
    passed = 0
    while passed < count and pos + _HEADER.size <= size:
        end = pos + _HEADER.size + _LENGTH.unpack(os.pread(fd, _LENGTH.size, pos))[0]
        if end > size:
            break
        pos = end
        passed += 1
    return pos, passed


def _valid_record_at_end_of_bad(fd: int, pos: int) -> bool:
    """Whether a valid record follows the CRC-failing record at ``pos`` (real corruption,
    not a torn tail)."""
    length = _LENGTH.unpack(os.pread(fd, _LENGTH.size, pos))[0]
    following, _, _ = _read_frames(fd, pos + _HEADER.size + length, 1, 0)
    return bool(following)


def _corrupt(path: Path, pos: int, why: str) -> LogCorruptError:
    return LogCorruptError(f"log segment {path} is corrupt at byte {pos}: {why}")


@dataclass
class _Writer:
    lock_fd: int
    fd: int  # the active (last) segment, opened for appending
    size: int  # its length in bytes
    end: int  # the offset the next record gets


@dataclass
class _Cursor:
    """Where the last read of a shard stopped, so the next one continues from there."""

    fd: int
    path: Path
    base: int  # the segment's first offset
    pos: int  # byte position of the next record in the segment
    offset: int  # offset of the next record


class _Checkpoint(msgspec.Struct):
    consumer: str
    shard: str
    offset: int


@dataclass
class _Tail:
    """How far ``lag`` has counted the records of the last segment (in a non-writing process)."""

    base: int
    pos: int = 0
    count: int = 0


class LocalLog(Log):
    """Files under ``root``; ``append`` is durable once it returns when ``fsync`` is on."""

    def __init__(
        self, root: Path, shards: int, segment_bytes: int, fsync: bool, retention_hours: float
    ) -> None:
        self._root = Path(root)
        self._ids = [f"shard-{i}" for i in range(shards)]
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._retention_seconds = retention_hours * 3600
        self._write_locks = {s: threading.Lock() for s in self._ids}
        self._read_locks = {s: threading.Lock() for s in self._ids}
        self._writers: dict[str, _Writer] = {}
        self._cursors: dict[str, _Cursor] = {}
        self._tails: dict[str, _Tail] = {}
        for shard in self._ids:
            (self._root / shard).mkdir(parents=True, exist_ok=True)

    def shards(self) -> list[str]:
        return list(self._ids)

    # -- writing ---------------------------------------------------------------------------

    def append(self, shard: str, records: Sequence[bytes]) -> list[LogPosition]:
        self._check(shard)
        if not records:
            return []
        data = _frame(records)
        with self._write_locks[shard]:
            writer = self._writers.get(shard) or self._open_writer(shard)
            try:
                if writer.size and writer.size + len(data) > self._segment_bytes:
                    self._roll(shard, writer)
                view = memoryview(data)
                while view:
                    view = view[os.write(writer.fd, view) :]
                if self._fsync:
                    os.fdatasync(writer.fd)
            except BaseException:
                # Cut off what this call wrote, then start over from the disk on the next call.
                try:
                    os.ftruncate(writer.fd, writer.size)
                finally:
                    self._close_writer(shard)
                raise
            start = writer.end
            writer.size += len(data)
            writer.end += len(records)
        return [LogPosition(shard, start + i) for i in range(len(records))]

    def _open_writer(self, shard: str) -> _Writer:
        directory = self._root / shard
        lock_path = directory / "writer.lock"
        lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise LogBusyError(
                f"log shard {shard} is being written by another process (lock {lock_path})"
            ) from None
        try:
            bases = self._segments(shard)
            base = bases[-1] if bases else 0
            fd, size, count = self._recover(self._segment_path(shard, base))
        except BaseException:
            os.close(lock_fd)
            raise
        if not bases:  # a new segment file, maybe in a new directory: make both durable
            self._sync_dir(directory)
            self._sync_dir(self._root)
        writer = _Writer(lock_fd, fd, size, base + count)
        self._writers[shard] = writer
        return writer

    def _recover(self, path: Path) -> tuple[int, int, int]:
        """Open the last segment for appending, cutting away a torn tail.

        Returns the file descriptor, the segment's size and its number of records."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            pos, count, stop = 0, 0, _Stop.LIMIT
            while stop is _Stop.LIMIT:
                records, pos, stop = _read_frames(fd, pos, 1024, _CHUNK)
                count += len(records)
            if stop is _Stop.BAD and _valid_record_at_end_of_bad(fd, pos):
                raise _corrupt(path, pos, "a record fails its CRC check and valid records follow it")
            if stop is not _Stop.END:
                os.ftruncate(fd, pos)
                if self._fsync:
                    os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, pos, count

    def _roll(self, shard: str, writer: _Writer) -> None:
        fd = os.open(self._segment_path(shard, writer.end), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        os.close(writer.fd)
        writer.fd, writer.size = fd, 0
        self._sync_dir(self._root / shard)

    def _sync_dir(self, directory: Path) -> None:
        if self._fsync:
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _close_writer(self, shard: str) -> None:
        writer = self._writers.pop(shard, None)
        if writer is not None:
            os.close(writer.fd)
            os.close(writer.lock_fd)  # releases the flock

    # -- reading ---------------------------------------------------------------------------

    def read(
        self, shard: str, after: int | None, max_records: int = 1000, max_bytes: int = 64 << 20
    ) -> list[LogRecord]:
        self._check(shard)
        want = 0 if after is None else after + 1
        with self._read_locks[shard]:
            cursor = self._cursors.get(shard)
            if cursor is None or cursor.offset != want:
                cursor = self._seek(shard, want)
                if cursor is None:
                    return []
            return self._read_on(shard, cursor, max_records, max_bytes)

    def _read_on(self, shard: str, cursor: _Cursor, max_records: int, max_bytes: int) -> list[LogRecord]:
        out: list[LogRecord] = []
        size = 0
        final = False  # whether the segment is known to be complete (a later one exists)
        while len(out) < max_records:
            records, pos, stop = _read_frames(
                cursor.fd, cursor.pos, max_records - len(out), max_bytes - size, first_may_exceed=not out
            )
            for data in records:
                out.append(LogRecord(LogPosition(shard, cursor.offset), data))
                cursor.offset += 1
                size += len(data)
            cursor.pos = pos
            if stop is _Stop.LIMIT:
                break
            if stop is _Stop.BAD and _valid_record_at_end_of_bad(cursor.fd, pos):
                raise _corrupt(cursor.path, pos, "a record fails its CRC check and valid records follow it")
            if not final:
                # The next segment is named by the offset after this one's last record.
                final = cursor.offset > cursor.base and self._segment_path(shard, cursor.offset).exists()
                if final:
                    continue  # read again what the writer added before it started the next segment
                if os.fstat(cursor.fd).st_nlink == 0:  # trimmed away under us: go on at what is left
                    moved = self._seek(shard, cursor.offset)
                    if moved is None:
                        break
                    cursor = moved
                    continue
                break
            if stop is not _Stop.END:
                raise _corrupt(cursor.path, pos, f"{stop.value} but a later segment exists")
            cursor = self._open_cursor(shard, cursor.offset, cursor)
            final = False
        return out

    def _seek(self, shard: str, offset: int) -> _Cursor | None:
        """A cursor at ``offset``, or at the first record kept when it was trimmed."""
        while True:
            bases = self._segments(shard)
            if not bases:
                return None
            base = bases[max(bisect.bisect_right(bases, offset) - 1, 0)]
            cursor = self._cursors.get(shard)
            try:
                cursor = self._open_cursor(shard, base, cursor)
            except FileNotFoundError:
                continue  # trimmed between listing and opening
            cursor.pos, passed = _skip(cursor.fd, 0, offset - base)
            cursor.offset = base + passed
            return cursor

    def _open_cursor(self, shard: str, base: int, old: _Cursor | None) -> _Cursor:
        path = self._segment_path(shard, base)
        fd = os.open(path, os.O_RDONLY)
        if old is not None:
            os.close(old.fd)
        cursor = self._cursors[shard] = _Cursor(fd, path, base, 0, base)
        return cursor

    def lag(self, shard: str, after: int | None) -> ShardLag:
        self._check(shard)
        done = 0 if after is None else after + 1
        return ShardLag(shard, max(self._end(shard) - done, 0), None)

    def _end(self, shard: str) -> int:
        """The offset the next appended record will get."""
        writer = self._writers.get(shard)
        if writer is not None:
            return writer.end
        with self._read_locks[shard]:
            bases = self._segments(shard)
            if not bases:
                return 0
            tail = self._tails.get(shard)
            if tail is None or tail.base != bases[-1]:
                tail = self._tails[shard] = _Tail(bases[-1])
            try:
                fd = os.open(self._segment_path(shard, tail.base), os.O_RDONLY)
            except FileNotFoundError:  # rolled and trimmed since the listing: count again next time
                return tail.base + tail.count
            try:
                if tail.pos > os.fstat(fd).st_size:  # cut shorter than it was (fsync off, power loss)
                    tail.pos = tail.count = 0
                # Count only valid records: a torn tail may be cut away and written over.
                stop = _Stop.LIMIT
                while stop is _Stop.LIMIT:
                    records, tail.pos, stop = _read_frames(fd, tail.pos, 1024, _CHUNK)
                    tail.count += len(records)
            finally:
                os.close(fd)
            return tail.base + tail.count

    # -- retention and checkpoints -----------------------------------------------------------

    def trim(self, shard: str, before: int) -> None:
        self._check(shard)
        bases = self._segments(shard)
        young = time.time() - self._retention_seconds
        for base, following in itertools.pairwise(bases):  # never the last segment
            if following > before:
                break
            path = self._segment_path(shard, base)
            try:
                if self._retention_seconds > 0 and path.stat().st_mtime > young:
                    break
                path.unlink()
            except FileNotFoundError:
                continue

    def save_checkpoint(self, consumer: str, shard: str, offset: int) -> None:
        path = self._checkpoint_path(consumer, shard)
        temp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temp.write_bytes(msgspec.json.encode(_Checkpoint(consumer, shard, offset)))
        os.replace(temp, path)

    def checkpoint(self, consumer: str, shard: str) -> int | None:
        try:
            saved = self._checkpoint_path(consumer, shard).read_bytes()
        except FileNotFoundError:
            return None
        return msgspec.json.decode(saved, type=_Checkpoint).offset

    def _checkpoint_path(self, consumer: str, shard: str) -> Path:
        self._check(shard)
        if not _CONSUMER.fullmatch(consumer):
            raise ValueError(f"consumer name {consumer!r} must match {_CONSUMER.pattern}")
        return self._root / shard / f"checkpoint-{consumer}.json"

    def close(self) -> None:
        for shard in self._ids:
            with self._write_locks[shard]:
                self._close_writer(shard)
            with self._read_locks[shard]:
                cursor = self._cursors.pop(shard, None)
                if cursor is not None:
                    os.close(cursor.fd)
                self._tails.pop(shard, None)

    # -- files -----------------------------------------------------------------------------

    def _check(self, shard: str) -> None:
        if shard not in self._write_locks:
            raise KeyError(f"log {self._root} has no shard {shard!r} (it has {', '.join(self._ids)})")

    def _segment_path(self, shard: str, base: int) -> Path:
        return self._root / shard / f"{base:020d}{_SUFFIX}"

    def _segments(self, shard: str) -> list[int]:
        """The first offsets of the shard's segments, ascending."""
        names = os.listdir(self._root / shard)
        stems = (name.removesuffix(_SUFFIX) for name in names if name.endswith(_SUFFIX))
        return sorted(int(stem) for stem in stems if stem.isdigit())
