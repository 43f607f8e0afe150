"""Stage 1's raw commit: one atomic append carrying the rows and the progress they make.

pyiceberg (0.12) retries a conflicting commit by itself, rebuilding it on the refreshed
table with the same snapshot properties. That is right when the other writer was, say, a
deletion purge; it would be wrong if it were a second processor (two commits claiming the
same sequence number), so after every commit we check that our parent recorded exactly the
progress we started from. When pyiceberg gives up, we refresh and decide ourselves:
our commit landed after all (done), someone else advanced raw's progress (terminal: two
processors), or the table moved on for another reason (retry the same rows after a pause).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pyarrow as pa
import structlog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from insightloop.errors import CommitConflictError, TerminalError
from insightloop.processor.progress import RawProgress, committed_progress, progress_before
from insightloop.processor.retry import Backoff

_log = structlog.get_logger(__name__)

ATTEMPTS = 6


def append_raw(
    table: Table,
    rows: pa.Table,
    start: RawProgress,
    target: RawProgress,
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Append ``rows`` (numbered ``target.seq``) to raw, recording ``target``, in one commit.

    ``start`` is the progress the table records now. Raises ``CommitConflictError`` when
    conflicts outlast ``attempts``, ``TerminalError`` when another writer advanced raw."""
    name = ".".join(table.name())
    backoff = Backoff(first=0.05, cap=2.0)
    for attempt in range(1, attempts + 1):
        try:
            table.append(rows, snapshot_properties=target.properties())
        except CommitFailedException as exc:
            table.refresh()
            now = committed_progress(table)
            if now == target:
                _log.warning("raw commit reported failed but landed", table=name, seq=target.seq)
                return
            _check_not_advanced(name, now, start)
            delay = backoff.next_delay()
            _log.warning(
                "raw commit conflicted; retrying", table=name, seq=target.seq, attempt=attempt, error=str(exc)
            )
            sleep(delay)
            continue
        _check_parent(table, start, target)
        return
    raise CommitConflictError(f"raw commit of seq {target.seq} to {name} conflicted {attempts} times")


def _check_not_advanced(name: str, now: RawProgress, start: RawProgress) -> None:
    if now != start:
        raise TerminalError(
            f"raw table {name} was advanced by another writer (seq {start.seq} → {now.seq}): "
            "is a second processor running on the same log?"
        )


def _check_parent(table: Table, start: RawProgress, target: RawProgress) -> None:
    snapshot = table.metadata.current_snapshot()
    if snapshot is None:  # pragma: no cover - we just committed one
        return
    before = progress_before(table.metadata, snapshot.snapshot_id)
    if before is not None and before != start:
        raise TerminalError(
            f"raw seq {target.seq} of {'.'.join(table.name())} was committed on top of seq {before.seq}, "
            f"not {start.seq}: is a second processor running on the same log?"
        )
