"""One behaviour suite for every ``Log`` implementation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from insightloop.log import Log, ShardLag
from insightloop.log.local import LocalLog
from insightloop.log.memory import MemoryLog


@pytest.fixture(params=["memory", "local"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    opened: Log
    if request.param == "memory":
        opened = MemoryLog(shards=2)
    else:
        # Small segments so that reads cross segment files and trim has whole files to delete.
        opened = LocalLog(tmp_path, shards=2, segment_bytes=256, fsync=True, retention_hours=0)
    yield opened
    opened.close()


def records(*numbers: int) -> list[bytes]:
    return [f"record {n}".encode() for n in numbers]


def offsets_and_data(log: Log, shard: str, after: int | None, **limits: int) -> list[tuple[int, bytes]]:
    return [(r.position.offset, r.data) for r in log.read(shard, after, **limits)]


def test_append_returns_consecutive_positions_across_calls(log: Log) -> None:
    first = log.append("shard-0", records(0, 1, 2))
    second = log.append("shard-0", records(3, 4))

    assert [str(p) for p in first + second] == [f"shard-0:{i}" for i in range(5)]


def test_read_returns_records_in_order_after_an_offset(log: Log) -> None:
    log.append("shard-0", records(0, 1, 2))
    log.append("shard-0", records(3, 4))

    assert offsets_and_data(log, "shard-0", None) == [(i, f"record {i}".encode()) for i in range(5)]
    assert offsets_and_data(log, "shard-0", 2) == [(3, b"record 3"), (4, b"record 4")]
    assert log.read("shard-0", 4) == []
    assert log.read("shard-0", 99) == []


def test_empty_records_are_stored_too(log: Log) -> None:
    log.append("shard-0", [b"", b"x", b""])

    assert [r.data for r in log.read("shard-0", None)] == [b"", b"x", b""]


def test_read_of_an_empty_shard_is_empty(log: Log) -> None:
    assert log.read("shard-0", None) == []
    assert log.read("shard-0", 10) == []


def test_read_respects_max_records_and_max_bytes(log: Log) -> None:
    log.append("shard-0", [b"a" * 10, b"b" * 10, b"c" * 10, b"d" * 10])

    assert [r.position.offset for r in log.read("shard-0", None, max_records=3)] == [0, 1, 2]
    assert [r.data for r in log.read("shard-0", None, max_bytes=25)] == [b"a" * 10, b"b" * 10]
    # A record bigger than max_bytes still comes back alone, so a consumer never gets stuck.
    assert [r.data for r in log.read("shard-0", 0, max_bytes=5)] == [b"b" * 10]


def test_a_consumer_reading_just_past_its_last_read_sees_every_record_once(log: Log) -> None:
    seen: list[bytes] = []
    last: int | None = None
    for batch in range(6):
        log.append("shard-0", records(*range(batch * 4, batch * 4 + 4)))
        while got := log.read("shard-0", last, max_records=3):
            seen += [r.data for r in got]
            last = got[-1].position.offset

    assert seen == records(*range(24))
    assert last == 23


def test_reads_at_arbitrary_offsets_after_sequential_reads(log: Log) -> None:
    for start in range(0, 30, 5):
        log.append("shard-0", records(*range(start, start + 5)))
    log.read("shard-0", None, max_records=20)

    assert offsets_and_data(log, "shard-0", 6, max_records=2) == [(7, b"record 7"), (8, b"record 8")]
    assert offsets_and_data(log, "shard-0", 26) == [(i, f"record {i}".encode()) for i in range(27, 30)]
    assert offsets_and_data(log, "shard-0", 0, max_records=1) == [(1, b"record 1")]


def test_lag_counts_records_not_yet_read(log: Log) -> None:
    assert log.lag("shard-0", None) == ShardLag("shard-0", 0, None)
    log.append("shard-0", records(*range(10)))

    assert log.lag("shard-0", None).records == 10
    assert log.lag("shard-0", 3).records == 6
    assert log.lag("shard-0", 9).records == 0
    assert log.lag("shard-1", None).records == 0


def test_trim_drops_only_records_before_the_offset(log: Log) -> None:
    for start in range(0, 40, 4):
        log.append("shard-0", records(*range(start, start + 4)))

    log.trim("shard-0", 25)

    kept = offsets_and_data(log, "shard-0", None)
    first = kept[0][0]
    assert 0 < first <= 25  # whole segments may keep a few older records
    assert kept == [(i, f"record {i}".encode()) for i in range(first, 40)]
    # A read of a trimmed offset starts at the first record kept.
    assert offsets_and_data(log, "shard-0", 2)[0][0] == first
    log.append("shard-0", records(40))
    assert offsets_and_data(log, "shard-0", 39) == [(40, b"record 40")]


def test_checkpoints_are_per_consumer_and_shard(log: Log) -> None:
    assert log.checkpoint("processor", "shard-0") is None

    log.save_checkpoint("processor", "shard-0", 41)
    log.save_checkpoint("processor", "shard-0", 42)
    log.save_checkpoint("auditor", "shard-0", 7)
    log.save_checkpoint("processor", "shard-1", 3)

    assert log.checkpoint("processor", "shard-0") == 42
    assert log.checkpoint("auditor", "shard-0") == 7
    assert log.checkpoint("processor", "shard-1") == 3
    assert log.checkpoint("auditor", "shard-1") is None


def test_shards_are_independent(log: Log) -> None:
    assert log.shards() == ["shard-0", "shard-1"]
    log.append("shard-0", records(0, 1, 2))

    assert [p.offset for p in log.append("shard-1", records(100))] == [0]
    assert offsets_and_data(log, "shard-1", None) == [(0, b"record 100")]
    assert len(log.read("shard-0", None)) == 3
    assert log.lag("shard-0", None).records == 3


def test_an_unknown_shard_is_refused(log: Log) -> None:
    with pytest.raises(KeyError):
        log.append("shard-9", records(0))
    with pytest.raises(KeyError):
        log.read("shard-9", None)


def test_concurrent_appends_to_one_shard_get_distinct_consecutive_offsets(log: Log) -> None:
    positions: list[int] = []
    guard = threading.Lock()

    def writer(name: str) -> None:
        for i in range(10):
            got = log.append("shard-0", [f"{name}-{i}-{j}".encode() for j in range(3)])
            with guard:
                positions.extend(p.offset for p in got)

    threads = [threading.Thread(target=writer, args=(f"t{t}",)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(positions) == list(range(120))
    stored = log.read("shard-0", None, max_records=1000)
    assert len({r.data for r in stored}) == 120
    # Each call's records are stored together, in the order given.
    by_offset = {r.position.offset: r.data for r in stored}
    for offset in range(0, 120, 3):
        name, i, _ = by_offset[offset].decode().split("-")
        assert [by_offset[offset + j] for j in range(3)] == [f"{name}-{i}-{j}".encode() for j in range(3)]
