"""Which failures a retry can cure, and how long to wait before the next try."""

from __future__ import annotations

import random

from pyiceberg.exceptions import CommitFailedException, ValidationException
from sqlalchemy.exc import OperationalError

from insightloop.errors import TerminalError, TransientError

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
