"""Back-pressure from the log's consumer: is the processor too far behind?

Measured in the background every ``interval`` seconds (in a thread: a log may touch files
to answer), so a request only reads a flag. The lag is the records appended but not yet
checkpointed by ``consumer``, summed over the shards; a log that cannot count records
(Kinesis) never trips it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from insightloop.collector.metrics import CollectorMetrics
from insightloop.log import Log

logger = logging.getLogger(__name__)

CONSUMER = "processor"


class LagMonitor:
    def __init__(
        self,
        log: Log,
        max_lag_records: int,
        interval: float,
        metrics: CollectorMetrics,
        consumer: str = CONSUMER,
    ) -> None:
        self._log = log
        self.max_lag_records = max_lag_records
        self._interval = interval
        self._metrics = metrics
        self._consumer = consumer
        self._task: asyncio.Task[None] | None = None
        #: The last measurement; None until the first one.
        self.lag_records: int | None = None
        self.overloaded = False
        #: Why the last measurement failed, if it did (the previous verdict then stands).
        self.error: str | None = None

    def measure(self) -> int:
        total = 0
        for shard in self._log.shards():
            lag = self._log.lag(shard, self._log.checkpoint(self._consumer, shard))
            total += lag.records or 0
        return total

    async def start(self) -> None:
        await self._refresh()
        self._task = asyncio.create_task(self._run(), name="log-lag-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._refresh()

    async def _refresh(self) -> None:
        try:
            lag = await asyncio.to_thread(self.measure)
        except Exception as exc:
            if self.error is None:
                logger.exception("measuring the log's lag failed")
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.error = None
        self.lag_records = lag
        self.overloaded = lag >= self.max_lag_records
        self._metrics.log_lag.set(lag)
