"""Group commit: many requests, one durable ``log.append`` per shard at a time.

A handler puts its request's log record on a bounded queue and awaits a future. One writer
task per shard takes everything waiting (up to a cap) and appends it in a single
``log.append(shard, records)`` call, run in a thread so that fsync never blocks the event
loop; the futures resolve only once ``append`` has returned, i.e. once the records are
durable. A writer busy appending takes nothing new, so waiting requests go to the shards
that are free: the load spreads over the shards in turn.

A full queue is refused at once (``Backpressure``): the queue never grows without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from insightloop.collector.metrics import CollectorMetrics
from insightloop.errors import LogFullError, TransientError
from insightloop.log import Log

logger = logging.getLogger(__name__)


class Backpressure(TransientError):
    """Too much is waiting (writer queue or unread log): retry after a pause."""


class LogUnavailable(TransientError):
    """The log append failed or the writer is not running: the request was not stored."""


class _Pending:
    __slots__ = ("future", "record")

    def __init__(self, record: bytes, future: asyncio.Future[None]) -> None:
        self.record = record
        self.future = future


class LogWriter:
    def __init__(
        self,
        log: Log,
        max_pending: int,
        metrics: CollectorMetrics,
        max_group_requests: int = 512,
        max_group_bytes: int = 16 << 20,
    ) -> None:
        self._log = log
        self._max_pending = max_pending
        self._metrics = metrics
        self._max_group_requests = max_group_requests
        self._max_group_bytes = max_group_bytes
        self._queue: asyncio.Queue[_Pending] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        #: The last append failure (other than a full log), cleared by the next success.
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._queue is not None and not self._closing

    @property
    def max_pending(self) -> int:
        return self._max_pending

    def depth(self) -> int:
        """Requests waiting for a writer (not counting those being appended)."""
        return 0 if self._queue is None else self._queue.qsize()

    async def start(self) -> None:
        shards = self._log.shards()
        self._queue = asyncio.Queue(self._max_pending)
        self._closing = False
        self._executor = ThreadPoolExecutor(len(shards), thread_name_prefix="collector-log")
        self._tasks = [asyncio.create_task(self._run(shard), name=f"log-writer-{shard}") for shard in shards]

    async def stop(self) -> None:
        """Refuse new requests, write everything already accepted, then stop."""
        self._closing = True
        if self._queue is not None:
            await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._queue = None

    async def write(self, record: bytes) -> None:
        """Return once ``record`` is durable in the log; raise ``Backpressure`` or
        ``LogUnavailable`` when it was not stored (the client should retry)."""
        queue = self._queue
        if queue is None or self._closing:
            raise LogUnavailable("the collector's log writer is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            queue.put_nowait(_Pending(record, future))
        except asyncio.QueueFull:
            raise Backpressure(f"{self._max_pending} requests are already waiting for the log") from None
        await future

    async def _run(self, shard: str) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            group = [await queue.get()]
            size = len(group[0].record)
            while (
                len(group) < self._max_group_requests and size < self._max_group_bytes and not queue.empty()
            ):
                pending = queue.get_nowait()
                group.append(pending)
                size += len(pending.record)
            try:
                await self._append(shard, group)
            finally:
                for _ in group:
                    queue.task_done()

    async def _append(self, shard: str, group: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        failure: Exception
        try:
            await loop.run_in_executor(self._executor, self._log.append, shard, [p.record for p in group])
        except LogFullError as exc:
            failure = Backpressure(f"the log is full: {exc}")
        except Exception as exc:
            logger.exception("log append of %d requests to shard %s failed", len(group), shard)
            self.last_error = f"{type(exc).__name__}: {exc}"
            failure = LogUnavailable(f"log append to shard {shard} failed: {self.last_error}")
        else:
            self.last_error = None
            self._metrics.append_seconds.observe(time.perf_counter() - started)
            self._metrics.append_requests.observe(len(group))
            for pending in group:
                if not pending.future.done():  # done: the client went away
                    pending.future.set_result(None)
            return
        for pending in group:
            if not pending.future.done():
                pending.future.set_exception(type(failure)(*failure.args))
