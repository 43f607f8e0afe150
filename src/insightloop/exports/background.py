"""Writing chunks in a thread of its own, in order: Parquet encoding (which releases the GIL)
overlaps with DuckDB reading the next rows, and at most ``QUEUE`` chunks wait (bounded
memory). A write's error reaches the producer at its next ``put`` or at ``finish``."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

#: Chunks waiting to be written, at most.
QUEUE = 2

Chunk = TypeVar("Chunk")


class Background(Generic[Chunk]):
    def __init__(self, write: Callable[[Chunk], None], name: str) -> None:
        self._write = write
        self._queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=QUEUE)
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, chunk: Chunk) -> None:
        """Queue ``chunk`` (waits while ``QUEUE`` chunks wait); re-raises a write's error."""
        self._raise()
        self._queue.put(chunk)

    def finish(self) -> None:
        """Wait for every queued chunk to be written; re-raises a write's error."""
        self._stop()
        self._raise()

    def cancel(self) -> None:
        """Stop; chunks still queued are not written."""
        self._cancelled = True
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is not None or self._cancelled:
                continue  # drain: the producer sees the error at its next put
            try:
                self._write(chunk)
            except BaseException as exc:  # handed to the producer
                self._error = exc
