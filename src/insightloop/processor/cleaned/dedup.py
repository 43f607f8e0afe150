"""The message ids already made into cleaned rows, and the stage's watermark.

Ids are kept as 64-bit hashes of ``source`` + message id (murmur3) in a Python set: a
lookup is ~50 ns, so 100K ids/s cost a few ms. An id counts as seen for
``dedup_window_days`` after the day (UTC, of ``received_at``) its first copy arrived; the
window is measured against the newest day recorded (data time, not the wall clock, so a
replay decides exactly as the first run did). Memory is ~70 bytes per id in the window.

On disk (``directory``), written only after every table of a batch has committed:

- ``seen-<day>.ids``: append-only, one record per batch: a header (magic, raw sequence,
  count, CRC-32) and the hashes. A torn last record (crash mid-write) fails its check and
  is cut off at load;
- ``marker.json``: the raw sequence through which every table of the stage is complete
  (the stage's watermark), replaced atomically (write, fsync, rename) after the records.

At load, records above the marker (written, but the marker was not) are dropped too, so the
set holds exactly the ids of raw rows at or below the watermark, and the rows above it are
re-applied by the runner and decide exactly as before. Losing the directory costs only
time: the watermark drops to 0 and replaying raw rebuilds the set (tables skip what they
hold).

A collision of two different ids' 64-bit hashes makes the later one a duplicate: with n
ids in the window the chance is about n²/2⁶⁵ (1 in 10⁴ at 60M ids).
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import mmh3
import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from insightloop.files import write_atomically

_HEADER = struct.Struct("<4sqII")
_MAGIC = b"SEEN"
_DAY_US = 86_400_000_000
_PREFIX = "seen-"
_SUFFIX = ".ids"


def id_key(source: str, message_id: str) -> int:
    """The 64-bit key of a message id from a source."""
    key: int = mmh3.hash64(f"{source}\x1f{message_id}", signed=True)[0]
    return key


def id_keys(sources: pa.ChunkedArray, message_ids: pa.ChunkedArray, rows: Sequence[int]) -> list[int]:
    """``id_key`` of the given rows, the strings joined in Arrow."""
    separator = pa.scalar("\x1f", sources.type)
    texts = pc.binary_join_element_wise(sources, message_ids, separator).to_pylist()
    hash64 = mmh3.hash64
    return [hash64(texts[row], signed=True)[0] for row in rows]


def day_of(received_at_us: int) -> int:
    return received_at_us // _DAY_US


class _Marker(msgspec.Struct):
    seq: int


def read_marker(directory: Path) -> int:
    """The watermark stored in ``directory`` (0: none), without loading any seen ids."""
    path = directory / "marker.json"
    if not path.exists():
        return 0
    return msgspec.json.decode(path.read_bytes(), type=_Marker).seq


class SeenIds:
    """Seen message-id keys within the window, persisted beside the stage's watermark."""

    def __init__(self, directory: Path, window_days: int) -> None:
        self._dir = directory
        self._window = window_days
        self._seen: set[int] = set()
        self._days: set[int] = set()
        self._dir.mkdir(parents=True, exist_ok=True)
        self.marker = self._read_marker()
        for day in self._stored_days():
            keys = self._load_day(day, truncate=True)
            if keys:
                self._seen.update(keys)
                self._days.add(day)
            else:
                self._path(day).unlink()
        self._expire()

    def __len__(self) -> int:
        return len(self._seen)

    def fresh(self, keys: Sequence[int]) -> list[bool]:
        """Per key: not seen before, and the first of its kind in ``keys``."""
        seen = self._seen
        if seen.isdisjoint(keys) and len(set(keys)) == len(keys):
            return [True] * len(keys)  # the usual batch: no duplicates at all
        batch: set[int] = set()
        out = []
        for key in keys:
            if key in seen or key in batch:
                out.append(False)
            else:
                batch.add(key)
                out.append(True)
        return out

    def recorded(self, keys: Sequence[int]) -> list[bool]:
        """Per key: already recorded (not counting repeats within ``keys``)."""
        seen = self._seen
        return [key in seen for key in keys]

    def record(self, keys_by_day: Mapping[int, Sequence[int]], seq: int) -> None:
        """Remember ``keys_by_day`` and move the watermark to ``seq`` (after the tables committed)."""
        for day, keys in keys_by_day.items():
            if keys:
                self._append(day, keys, seq)
        self._write_marker(seq)
        for day, keys in keys_by_day.items():
            if keys:
                self._seen.update(keys)
                self._days.add(day)
        self.marker = seq
        self._expire()

    # -- files

    def _path(self, day: int) -> Path:
        return self._dir / f"{_PREFIX}{day}{_SUFFIX}"

    def _stored_days(self) -> list[int]:
        days = []
        for path in self._dir.glob(f"{_PREFIX}*{_SUFFIX}"):
            text = path.name[len(_PREFIX) : -len(_SUFFIX)]
            if text.lstrip("-").isdigit():
                days.append(int(text))
        return sorted(days)

    def _append(self, day: int, keys: Sequence[int], seq: int) -> None:
        values = array("q", keys)
        if sys.byteorder != "little":
            values.byteswap()
        payload = values.tobytes()
        header = _HEADER.pack(_MAGIC, seq, len(values), zlib.crc32(payload))
        with open(self._path(day), "ab") as file:
            file.write(header + payload)
            file.flush()
            os.fsync(file.fileno())

    def _load_day(self, day: int, truncate: bool) -> list[int]:
        """The keys of the day's valid records at or below the marker. With ``truncate``, the
        file is rewritten without the others (a torn tail, records above the marker)."""
        path = self._path(day)
        data = path.read_bytes()
        kept: list[bytes] = []
        offset = 0
        clean = True
        while offset < len(data):
            if offset + _HEADER.size > len(data):
                clean = False
                break
            magic, seq, count, crc = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + 8 * count
            if magic != _MAGIC or end > len(data):
                clean = False
                break
            payload = data[offset + _HEADER.size : end]
            if zlib.crc32(payload) != crc:
                clean = False
                break
            if seq <= self.marker:
                kept.append(data[offset:end])
            else:
                clean = False
            offset = end
        if truncate and not clean:
            write_atomically(path, b"".join(kept))
        keys = array("q")
        for record in kept:
            keys.frombytes(record[_HEADER.size :])
        if sys.byteorder != "little":
            keys.byteswap()
        return keys.tolist()

    def _read_marker(self) -> int:
        return read_marker(self._dir)

    def _write_marker(self, seq: int) -> None:
        write_atomically(self._dir / "marker.json", msgspec.json.encode(_Marker(seq)))

    def _expire(self) -> None:
        if not self._days:
            return
        oldest = max(self._days) - self._window
        for day in sorted(d for d in self._days if d < oldest):
            self._seen.difference_update(self._load_day(day, truncate=False))
            self._days.discard(day)
            self._path(day).unlink(missing_ok=True)


def group_by_day(keys: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    """(key, received_at µs) pairs → keys per day."""
    out: dict[int, list[int]] = {}
    for key, received_at in keys:
        out.setdefault(day_of(received_at), []).append(key)
    return out
