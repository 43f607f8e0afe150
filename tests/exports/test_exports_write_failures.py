"""When the lake cannot be written (a full disk, a file-size limit), a load is ``failed``, not
``rejected`` (it is not the file's fault) and not a crash: a clear message, exit code 1,
nothing of the file committed and no data file left, and the file loads whole once the cause
is gone. A merge into cleaned that cannot write leaves the file in raw and is finished at the
loader's next look."""

from __future__ import annotations

import errno
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

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

from insightloop.exports import cleaned
from insightloop.exports.status import files_status

ROWS = 40_000
#: The write limit of the failing load: above the catalog's, metadata's and status' files,
#: below the raw data file the file makes.
LIMIT_BYTES = 256 << 10


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


def test_a_merge_that_cannot_write_is_finished_at_the_next_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(row(i) for i in range(1, 6)))

    def full(*args: Any, **kwargs: Any) -> list[str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(cleaned, "_write", full)
        outcome = lake.load(path)
    assert outcome.status == "failed" and outcome.reason is not None
    assert outcome.reason.startswith("in raw, but its merge into cleaned failed: [Errno 28] No space left")
    assert lake.counts() == counts(5, 0, 0, 0)  # in raw, committed; not merged
    assert [s.status for s in files_status(config)] == ["failed"]

    # Space is back: the loader's next look merges it (and the file reads loaded, not due).
    lake.loader.catch_up_if_needed()
    assert lake.counts() == counts(5, 0, 5, 0)
    assert [(s.status, s.rows) for s in files_status(config)] == [("loaded", 5)]
    assert lake.load(path).status == "unchanged"
    assert len(lake.catalog.load_table(f"cleaned.crm_{ENTITY}").metadata.snapshots) == 1


def test_runs_merged_before_the_failing_one_are_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)
    names = ["contacts_2026-11-24.csv", "contacts_2026-11-25.csv", "contacts_2026-11-25_v2.csv"]
    texts = [csv_text(row(i, f"2026-11-2{4 + (n > 0)}") for i in range(1, 4 + n)) for n in range(3)]
    paths = [landing_file(tmp_path, name, text) for name, text in zip(names, texts, strict=True)]
    write = cleaned._write
    calls = 0

    def full_on_the_second(*args: Any, **kwargs: Any) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(*args, **kwargs)

    committed = [lake.loader.commit(file) for path in paths for file in files(path)]
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
