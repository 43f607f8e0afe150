"""When the lake cannot be written (a full disk, a file-size limit), a load is ``failed``, not
``rejected`` (it is not the file's fault) and not a crash: a clear message, exit code 1,
nothing of the file committed and no data file left, and the file loads whole once the cause
is gone. A merge into cleaned that cannot write leaves the file in raw and is finished at the
loader's next look."""

from __future__ import annotations

import errno
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from exports_kit import (
    ENTITY,
    Lake,
    counts,
    csv_text,
    environment,
    files,
    landing_file,
    make_config,
    on_disk,
    row,
)
from sqlalchemy.exc import OperationalError

from insightloop.exports import cleaned
from insightloop.exports.loader import LoadOutcome
from insightloop.exports.manifest import Manifest
from insightloop.exports.status import files_status

ROWS = 40_000
#: The write limit of the failing load: above the catalog's, metadata's and status' files,
#: below the raw data file the file makes.
LIMIT_BYTES = 256 << 10
#: The same for the merge of that file (cleaned's files are smaller than raw's).
MERGE_LIMIT_BYTES = 48 << 10


class Crash(Exception):
    pass


def limited() -> None:
    """In the child: files may not grow past ``LIMIT_BYTES`` (writes then fail with EFBIG,
    as they fail with ENOSPC on a full disk), without the signal that would kill it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT_BYTES, LIMIT_BYTES))


def test_a_load_that_cannot_write_the_lake_fails_cleanly_then_loads_whole(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    rows = [row(i, score="bad" if i % 10_000 == 0 else None) for i in range(ROWS)]
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(rows))
    env = {**environment(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "insightloop", "load", str(path)]

    failed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, preexec_fn=limited)
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert "Traceback" not in output
    assert f"failed     {path}: " in failed.stdout and "File too large" in failed.stdout, output
    assert "nothing of the file is committed" in failed.stdout
    [status] = files_status(config)
    assert (status.status, status.rows) == ("failed", 0)
    assert status.reason is not None and "[Errno 27]" in status.reason  # EFBIG, kept verbatim
    lake = Lake(config)
    assert lake.counts() == counts(0, 0, 0, 0)
    assert not on_disk(tmp_path / "data" / "lake"), "the failed load left data files behind"

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    bad = len(range(0, ROWS, 10_000))
    assert lake.counts() == counts(ROWS - bad, bad, ROWS - bad, bad)
    assert [s.status for s in files_status(config)] == ["loaded"]
    assert not any((tmp_path / "data" / "exports" / "staging").iterdir())


#: How a full disk shows in each library that writes the lake: the OS, DuckDB, the catalog.
FULL_DISK = [
    OSError(errno.ENOSPC, "No space left on device"),
    duckdb.IOException("IO Error: Could not write file: No space left on device"),
    OperationalError("INSERT INTO iceberg_tables", {}, sqlite3.OperationalError("database or disk is full")),
]


@pytest.mark.parametrize("error", FULL_DISK, ids=["os", "duckdb", "catalog"])
def test_a_merge_that_cannot_write_is_finished_at_the_next_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(row(i) for i in range(1, 6)))
    other = landing_file(
        tmp_path, "contacts_2026-11-26.csv", csv_text(row(i, "2026-11-26") for i in range(5, 7))
    )

    def full(*args: Any, **kwargs: Any) -> list[str]:
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(cleaned, "_write", full)
        outcome = lake.load(path)
        # Still full: the next file's load first tries the merge again, fails, and goes on.
        again = lake.load(other)
    assert outcome.status == again.status == "failed" and outcome.reason is not None
    assert outcome.reason.startswith("in raw, but its merge into cleaned failed: ")
    assert lake.counts() == counts(7, 0, 0, 0)
    lake.loader.catch_up_if_needed()
    assert lake.counts() == counts(7, 0, 6, 0)
    assert [(s.status, s.rows) for s in sorted(files_status(config), key=lambda s: s.uri)] == [
        ("loaded", 5),
        ("loaded", 2),
    ]
    assert lake.load(path).status == "unchanged"
    assert len(lake.catalog.load_table(f"cleaned.crm_{ENTITY}").metadata.snapshots) == 1  # both at once


def test_a_merge_that_cannot_write_its_files_fails_then_finishes(tmp_path: Path) -> None:
    """A real write failure in the merge (DuckDB's COPY past a file-size limit)."""
    config = make_config(tmp_path)
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(row(i) for i in range(ROWS)))
    script = f"""
import resource, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from exports_kit import Lake, files, make_config
from pathlib import Path
lake = Lake(make_config(Path({str(tmp_path)!r})))
committed = [lake.loader.commit(file) for file in files(Path({str(path)!r}))]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({MERGE_LIMIT_BYTES}, {MERGE_LIMIT_BYTES}))
print([(o.status, o.reason) for o in lake.loader.finish(committed)])
"""
    env = {**environment(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    child = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stdout + child.stderr
    assert "('failed', 'in raw, but its merge into cleaned failed: " in child.stdout, child.stdout
    lake = Lake(config)
    assert lake.counts() == counts(ROWS, 0, 0, 0)
    cleaned_folder = tmp_path / "data" / "lake" / "warehouse" / "cleaned"
    assert not on_disk(cleaned_folder), "the failed merge left its files on the full disk"

    lake.loader.catch_up_if_needed()
    assert lake.counts() == counts(ROWS, 0, ROWS, 0)
    assert [s.status for s in files_status(config)] == ["loaded"]


def test_a_crash_in_a_later_run_leaves_the_earlier_runs_loaded_on_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)
    committed = commit_two_runs(lake, tmp_path)
    crash_on_the_second = second_merge_raises(Crash("killed"))
    with monkeypatch.context() as patch:
        patch.setattr(cleaned, "_write", crash_on_the_second)
        with pytest.raises(Crash):
            lake.loader.finish(committed)
    assert [s.status for s in files_status(config)] == ["loading"] * 3

    restarted = Lake(config)
    restarted.loader.catch_up()
    assert [s.status for s in files_status(config)] == ["loaded"] * 3  # not found unchanged later
    assert restarted.counts() == counts(12, 0, 5, 0)


def test_a_load_whose_record_cannot_be_written_is_recorded_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(row(i) for i in range(1, 6)))

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(Manifest, "add", full)
        outcome = lake.load(path)
    assert outcome.status == "failed" and outcome.reason is not None
    assert outcome.reason.startswith("in raw, but not recorded: [Errno 28]")
    assert lake.counts() == counts(5, 0, 0, 0)
    lake.loader.catch_up_if_needed()
    assert lake.counts() == counts(5, 0, 5, 0)
    assert [(s.status, s.rows) for s in files_status(config)] == [("loaded", 5)]


def test_runs_merged_before_the_failing_one_are_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)
    committed = commit_two_runs(lake, tmp_path)
    full_on_the_second = second_merge_raises(OSError(errno.ENOSPC, "No space left on device"))
    assert [o.status for o in committed] == ["loaded"] * 3  # runs: days 24 and 25, then the correction
    with monkeypatch.context() as patch:
        patch.setattr(cleaned, "_write", full_on_the_second)
        done = lake.loader.finish(committed)
    assert [o.status for o in done] == ["loaded", "loaded", "failed"]
    assert [s.status for s in sorted(files_status(config), key=lambda s: s.uri)] == [
        "loaded",
        "loaded",
        "failed",
    ]
    assert lake.counts()["cleaned"] == 4  # keys 1-4 of the first run

    lake.loader.catch_up_if_needed()
    assert [s.status for s in files_status(config)] == ["loaded"] * 3
    assert lake.counts() == counts(12, 0, 5, 0)


def commit_two_runs(lake: Lake, tmp_path: Path) -> list[LoadOutcome]:
    """Stage 1 of three files that stage 2 merges in two runs: days 24 and 25 (keys 1-3 and
    1-4), then a correction of day 25 (keys 1-5)."""
    names = ["contacts_2026-11-24.csv", "contacts_2026-11-25.csv", "contacts_2026-11-25_v2.csv"]
    texts = [csv_text(row(i, f"2026-11-2{4 + (n > 0)}") for i in range(1, 4 + n)) for n in range(3)]
    paths = [landing_file(tmp_path, name, text) for name, text in zip(names, texts, strict=True)]
    return [lake.loader.commit(file) for path in paths for file in files(path)]


def second_merge_raises(error: Exception) -> Callable[..., list[str]]:
    """A stand-in for ``cleaned._write`` that raises ``error`` on its second call."""
    write = cleaned._write
    calls = 0

    def second_raises(*args: Any, **kwargs: Any) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise error
        return write(*args, **kwargs)

    return second_raises
