"""LocalLog on disk: reopening, torn tails, corruption, segment files and retention."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from insightloop.errors import LogCorruptError
from insightloop.log.local import LocalLog

SHARD = "shard-0"
BODY = 40  # bytes per test record


def record(n: int) -> bytes:
    return f"record {n:04d} ".encode().ljust(BODY, b".")


def open_log(root: Path, segment_bytes: int = 1 << 20, retention_hours: float = 0) -> LocalLog:
    return LocalLog(root, shards=2, segment_bytes=segment_bytes, fsync=True, retention_hours=retention_hours)


@pytest.fixture
def make_log(tmp_path: Path) -> Iterator[Callable[..., LocalLog]]:
    opened: list[LocalLog] = []

    def make(segment_bytes: int = 1 << 20, retention_hours: float = 0) -> LocalLog:
        log = open_log(tmp_path, segment_bytes, retention_hours)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


def stored(log: LocalLog, shard: str = SHARD) -> list[tuple[int, bytes]]:
    return [(r.position.offset, r.data) for r in log.read(shard, None, max_records=10_000)]


def segment_files(root: Path, shard: str = SHARD) -> list[str]:
    return sorted(p.name for p in (root / shard).glob("*.log"))


def test_records_survive_close_and_reopen(tmp_path: Path, make_log: Callable[..., LocalLog]) -> None:
    log = make_log()
    log.append(SHARD, [record(0), record(1)])
    log.append("shard-1", [record(9)])
    log.save_checkpoint("processor", SHARD, 1)
    log.close()

    again = make_log()
    assert stored(again) == [(0, record(0)), (1, record(1))]
    assert stored(again, "shard-1") == [(0, record(9))]
    assert again.checkpoint("processor", SHARD) == 1
    assert [p.offset for p in again.append(SHARD, [record(2)])] == [2]
    assert segment_files(tmp_path) == ["00000000000000000000.log"]


def _cut_last_bytes(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 3)


def _cut_into_last_header(path: Path) -> None:
    os.truncate(path, path.stat().st_size - BODY - 4)


def _append_garbage(path: Path) -> None:
    with path.open("ab") as file:
        file.write(b"\xde\xad\xbe\xef-not-a-record")


def _flip_byte_of_last_body(path: Path) -> None:
    with path.open("r+b") as file:
        file.seek(-5, os.SEEK_END)
        byte = file.read(1)
        file.seek(-5, os.SEEK_END)
        file.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize(
    ("damage", "complete"),
    [
        (_cut_last_bytes, 6),  # partial body of the last record
        (_cut_into_last_header, 6),  # partial length header
        (_flip_byte_of_last_body, 6),  # the last record fails its CRC
        (_append_garbage, 7),  # a torn write after the last complete record
    ],
    ids=["partial-body", "partial-header", "bad-crc", "garbage"],
)
def test_a_torn_tail_is_cut_away_keeping_every_complete_record(
    tmp_path: Path, make_log: Callable[..., LocalLog], damage: Callable[[Path], None], complete: int
) -> None:
    log = make_log()
    log.append(SHARD, [record(n) for n in range(4)])
    log.append(SHARD, [record(n) for n in range(4, 7)])
    log.close()
    damage(tmp_path / SHARD / "00000000000000000000.log")

    reader = make_log()  # reads take no lock and recover nothing: they stop at the tear
    assert stored(reader) == [(n, record(n)) for n in range(complete)]
    writer = make_log()
    assert [p.offset for p in writer.append(SHARD, [record(100)])] == [complete]

    assert stored(writer) == [(n, record(n)) for n in range(complete)] + [(complete, record(100))]
    assert reader.read(SHARD, complete - 1) == writer.read(SHARD, complete - 1)


def test_a_bad_record_followed_by_good_ones_is_corruption(
    tmp_path: Path, make_log: Callable[..., LocalLog]
) -> None:
    log = make_log()
    for n in range(5):
        log.append(SHARD, [record(n)])
    log.close()
    segment = tmp_path / SHARD / "00000000000000000000.log"
    frame = segment.stat().st_size // 5
    with segment.open("r+b") as file:
        file.seek(2 * frame + 12)
        file.write(b"X")

    with pytest.raises(LogCorruptError, match=f"{segment} is corrupt at byte {2 * frame}"):
        make_log().append(SHARD, [record(5)])
    reader = make_log()
    assert [r.position.offset for r in reader.read(SHARD, None, max_records=2)] == [0, 1]
    with pytest.raises(LogCorruptError, match=str(segment)):
        reader.read(SHARD, 1)


def test_segments_roll_at_the_size_limit_and_are_named_by_their_first_offset(
    tmp_path: Path, make_log: Callable[..., LocalLog]
) -> None:
    log = make_log(segment_bytes=200)  # four 48-byte framed records per segment
    for n in range(10):
        log.append(SHARD, [record(n)])
    log.append(SHARD, [record(n) for n in range(10, 20)])  # one call never spans two files

    assert segment_files(tmp_path) == [f"{first:020d}.log" for first in (0, 4, 8, 10)]
    assert stored(log) == [(n, record(n)) for n in range(20)]
    assert stored(make_log()) == [(n, record(n)) for n in range(20)]


def test_trim_deletes_only_old_fully_consumed_segments(
    tmp_path: Path, make_log: Callable[..., LocalLog]
) -> None:
    log = make_log(segment_bytes=200, retention_hours=1)
    for n in range(18):
        log.append(SHARD, [record(n)])
    files = segment_files(tmp_path)
    assert files == [f"{first:020d}.log" for first in (0, 4, 8, 12, 16)]
    two_hours_ago = time.time() - 7200
    for name in files[:2] + files[3:]:
        os.utime(tmp_path / SHARD / name, (two_hours_ago, two_hours_ago))

    log.trim(SHARD, 6)  # segment 4 still holds records 6 and 7
    assert segment_files(tmp_path) == files[1:]

    log.trim(SHARD, 100)  # segment 8 is within retention, and later ones must stay behind it
    assert segment_files(tmp_path) == files[2:]

    os.utime(tmp_path / SHARD / files[2], (two_hours_ago, two_hours_ago))
    log.trim(SHARD, 100)  # never the last segment, however old
    assert segment_files(tmp_path) == files[4:]
    assert stored(log) == [(16, record(16)), (17, record(17))]
    assert [p.offset for p in log.append(SHARD, [record(18)])] == [18]


def test_a_reader_moves_on_when_its_segment_is_trimmed(
    tmp_path: Path, make_log: Callable[..., LocalLog]
) -> None:
    log = make_log(segment_bytes=200)
    for n in range(12):
        log.append(SHARD, [record(n)])
    reader = make_log()
    assert [r.position.offset for r in reader.read(SHARD, None, max_records=2)] == [0, 1]

    log.trim(SHARD, 8)

    # Records 2 and 3 were still readable from the open file; the trimmed segment 4 is skipped.
    assert [r.position.offset for r in reader.read(SHARD, 1)] == [2, 3, 8, 9, 10, 11]


def test_a_reader_sees_appends_of_another_log_instance(make_log: Callable[..., LocalLog]) -> None:
    writer = make_log(segment_bytes=200)
    reader = make_log(segment_bytes=200)
    last: int | None = None
    seen: list[bytes] = []
    for n in range(10):
        writer.append(SHARD, [record(n)])
        got = reader.read(SHARD, last)
        seen += [r.data for r in got]
        last = got[-1].position.offset
        assert reader.lag(SHARD, last).records == 0
        assert reader.lag(SHARD, None).records == n + 1

    assert seen == [record(n) for n in range(10)]


def test_records_bigger_than_a_read_chunk(tmp_path: Path, make_log: Callable[..., LocalLog]) -> None:
    big, bigger = b"b" * 100_000, bytes(range(256)) * 12_000  # 100 KB, 3 MB
    log = make_log(segment_bytes=1 << 30)
    log.append(SHARD, [big, record(1), bigger, record(3)])
    log.append(SHARD, [bigger])
    log.close()
    segment = tmp_path / SHARD / "00000000000000000000.log"
    os.truncate(segment, segment.stat().st_size - 1000)

    assert stored(make_log()) == [(0, big), (1, record(1)), (2, bigger), (3, record(3))]
    log = make_log()
    assert [p.offset for p in log.append(SHARD, [record(4)])] == [4]
    assert [r.data for r in log.read(SHARD, 1, max_records=1)] == [bigger]
