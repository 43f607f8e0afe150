"""Which failures a retry can cure, how long to wait before the next try, and the loop of
turns that the processor and the cleaner run with both."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from pyiceberg.exceptions import CommitFailedException, ValidationException
from sqlalchemy.exc import OperationalError
from structlog.typing import FilteringBoundLogger

from insightloop.errors import TerminalError, TransientError
from insightloop.processor.metrics import ProcessorMetrics

#: Failures that a later attempt may not meet: a conflicting commit (or one invalidated by a
#: concurrent change, e.g. compaction rewrote the files an upsert meant to replace: redoing
#: it on the fresh table works), a busy SQLite catalog ("database is locked"), a file system
#: hiccup, a log or stage that says so itself.
TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    CommitFailedException,
    ValidationException,
    OperationalError,
    OSError,
)


def is_transient(exc: BaseException) -> bool:
    """True when retrying may help; a ``TerminalError`` never is, even if it is also an OSError."""
    return not isinstance(exc, TerminalError) and isinstance(exc, TRANSIENT)


class Backoff:
    """Exponential back-off with jitter: ``first``, doubled each failure, at most ``cap`` seconds."""

    def __init__(self, first: float = 0.1, cap: float = 10.0) -> None:
        self._first = first
        self._cap = cap
        self._failures = 0

    @property
    def failures(self) -> int:
        return self._failures

    def next_delay(self) -> float:
        """The wait before the next attempt; counts one more failure."""
        delay = min(self._first * (2**self._failures), self._cap)
        self._failures += 1
        return float(delay * random.uniform(0.8, 1.2))

    def reset(self) -> None:
        self._failures = 0


def run_turns(
    name: str,
    turn: Callable[[threading.Event], int],
    stop: threading.Event,
    *,
    log: FilteringBoundLogger,
    metrics: ProcessorMetrics,
    phase: Callable[[], str],
    restart: Callable[[], None],
    idle: float,
    idle_max: float,
) -> None:
    """Call ``turn`` until ``stop`` is set. After a turn that did nothing (returned 0), wait
    ``idle`` seconds, doubling up to ``idle_max`` while it stays so.

    A transient failure is counted under the ``phase`` it happened in, logged, and retried
    with back-off after ``restart`` (resume as after a restart); any other is counted, logged
    and raised."""
    backoff = Backoff(first=0.1, cap=10.0)
    pause = idle
    while not stop.is_set():
        try:
            done = turn(stop)
        except Exception as exc:
            where = phase()
            if not is_transient(exc):
                metrics.errors.labels(where, "terminal").inc()
                log.error(f"{name} failed", where=where, error=str(exc), exc_info=True)
                raise
            metrics.errors.labels(where, "transient").inc()
            delay = backoff.next_delay()
            log.warning(
                f"{name} retrying after a transient failure",
                where=where,
                error=f"{type(exc).__name__}: {exc}",
                attempt=backoff.failures,
                retry_in=round(delay, 2),
            )
            restart()
            stop.wait(delay)
            continue
        backoff.reset()
        if done == 0:
            stop.wait(pause)
            pause = min(pause * 2, idle_max)
        else:
            pause = idle
