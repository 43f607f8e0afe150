"""A crash between any two commits, then a replay of raw above the watermark, leaves every
table exactly as a run without the crash: no row twice, no row missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from cleaned_support import contents, identify, lake, raw_rows, track

from insightloop.processor.cleaned import commits, dedup
from insightloop.processor.cleaned.stage import CleanedStage


class Crash(Exception):
    """Stands in for the process dying."""


def _batches() -> list[tuple[pa.Table, list[Any]]]:
    """Three raw commits touching every kind of table, with duplicates and a late identify."""
    bad = b'{"type":"track","messageId":"bad","userId":"u1","event":"Paid","properties":"x"}'
    return [
        raw_rows(
            [
                track("t1", "Paid", {"amount": 10, "plan": "pro"}, context={"ip": "198.51.100.1"}),
                track("t2", "Signed Up", {"referrer": "ad"}),
                {
                    "type": "page",
                    "messageId": "p1",
                    "userId": "u1",
                    "name": "Home",
                    "properties": {"url": "/"},
                },
                identify("i1", "u1", {"email": "ada@example.com", "plan": "pro"}, "2024-05-01T10:00:00Z"),
                bad,
            ],
            seq=1,
            received_at="2024-05-01T12:00:00Z",
            context={"locale": "en"},
        ),
        raw_rows(
            [
                track("t1", "Paid", {"amount": 10}),  # a retry
                track("t3", "Paid", {"amount": 12.5, "coupon": "MAY"}),  # new column, twin column
                identify("i0", "u1", {"plan": "free", "company": "ACME"}, "2024-04-20T10:00:00Z"),  # late
                identify("i2", "u2", {"email": "bob@example.com"}, "2024-05-01T11:00:00Z"),
            ],
            seq=2,
            received_at="2024-05-01T12:01:00Z",
            rejections=[],
        ),
        raw_rows(
            [
                track("t4", "Signed Up", {"referrer": 7}),
                {"type": "alias", "messageId": "a1", "userId": "u2", "previousId": "anon-2"},
                track("t3", "Paid", {"amount": 12.5}),  # a retry
                identify("i3", "u1", {"seats": 3}, "2024-05-02T10:00:00Z"),
            ],
            seq=3,
            received_at="2024-05-02T12:00:00Z",
        ),
    ]


def _clean_run(path: Path) -> dict[str, Any]:
    config, catalog = lake(path)
    stage = CleanedStage(catalog, config)
    for raw, messages in _batches():
        stage.apply(raw, messages)
    return contents(catalog)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _clean_run(tmp_path_factory.mktemp("clean"))


@contextmanager
def _crash_after_commits(monkeypatch: pytest.MonkeyPatch, commits_before_crash: int) -> Iterator[None]:
    real = commits.Tables.write
    done = 0

    def write(self: commits.Tables, *args: Any, **kwargs: Any) -> None:
        nonlocal done
        if done == commits_before_crash:
            raise Crash(f"killed after {done} commits")
        real(self, *args, **kwargs)
        done += 1

    with monkeypatch.context() as patch:
        patch.setattr(commits.Tables, "write", write)
        yield


def _replay(stage: CleanedStage, batches: list[tuple[pa.Table, list[Any]]]) -> None:
    """What the runner does after a restart: raw above the watermark, in one go, undecoded."""
    rows = pa.concat_tables([raw for raw, _ in batches])
    rows = rows.filter(pc.greater(rows.column("ingest_seq"), stage.watermark()))
    stage.apply(rows, None)


def _run_with_crash(
    path: Path, monkeypatch: pytest.MonkeyPatch, crash_after: int, restart: bool
) -> dict[str, Any]:
    config, catalog = lake(path)
    stage = CleanedStage(catalog, config)
    batches = _batches()
    with _crash_after_commits(monkeypatch, crash_after), pytest.raises(Crash):
        for raw, messages in batches:
            stage.apply(raw, messages)
    if restart:
        config, catalog = lake(path)
        stage = CleanedStage(catalog, config)
    _replay(stage, batches)
    return contents(catalog)


# The clean run makes 16 commits: 7 for batch 1 (tracks, paid, signed_up, pages, identifies,
# users, quarantine), 4 for batch 2, 5 for batch 3.
@pytest.mark.parametrize("crash_after", [0, 3, 6, 7, 9, 12, 15])
def test_a_crash_between_commits_then_replay_gives_the_clean_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expected: dict[str, Any], crash_after: int
) -> None:
    assert _run_with_crash(tmp_path, monkeypatch, crash_after, restart=True) == expected


def test_a_failed_apply_retried_in_the_same_process_gives_the_clean_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expected: dict[str, Any]
) -> None:
    assert _run_with_crash(tmp_path, monkeypatch, 9, restart=False) == expected


def test_a_crash_after_the_tables_before_the_watermark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expected: dict[str, Any]
) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    batches = _batches()
    stage.apply(*batches[0])
    # Batch 2's ids reach the seen-ids file, then the process dies before the marker moves.
    with monkeypatch.context() as patch:
        patch.setattr(dedup.SeenIds, "_write_marker", lambda self, seq: (_ for _ in ()).throw(Crash()))
        with pytest.raises(Crash):
            stage.apply(*batches[1])
    config, catalog = lake(tmp_path)
    restarted = CleanedStage(catalog, config)
    assert restarted.watermark() == 1
    _replay(restarted, batches)
    assert contents(catalog) == expected


def test_replaying_what_was_applied_changes_nothing(tmp_path: Path, expected: dict[str, Any]) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    batches = _batches()
    for raw, messages in batches:
        stage.apply(raw, messages)
        stage.apply(raw, messages)
    stage.apply(pa.concat_tables([raw for raw, _ in batches]), None)
    CleanedStage(catalog, config).apply(batches[1][0], None)
    assert contents(catalog) == expected
    assert stage.watermark() == 3


def test_other_batch_boundaries_give_the_same_tables(tmp_path: Path, expected: dict[str, Any]) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    stage.apply(pa.concat_tables([raw for raw, _ in _batches()]), None)
    assert contents(catalog) == expected


def test_losing_the_stage_state_costs_a_replay_not_rows(tmp_path: Path, expected: dict[str, Any]) -> None:
    config, catalog = lake(tmp_path)
    batches = _batches()
    stage = CleanedStage(catalog, config)
    for raw, messages in batches:
        stage.apply(raw, messages)
    shutil.rmtree(config.path("processor", "cleaned"))

    restarted = CleanedStage(catalog, config)
    assert restarted.watermark() == 0
    _replay(restarted, batches)  # everything raw holds: the tables skip what they have
    assert contents(catalog) == expected
    retry, messages = raw_rows([track("t1", "Paid", {"amount": 10})], seq=4)
    restarted.apply(retry, messages)  # the rebuilt seen ids still know t1
    assert contents(catalog) == expected
