"""Between its turns, a writing process (processor or cleaner) compacts and expires the
snapshots of the tables it commits to, each when due: compaction every few turns (or now and
then while idle), snapshot expiry every few minutes (and on the first look).

Each process maintains only its own tables (``namespaces``), so maintenance never conflicts
with another process's commits. The owner asks whether a task is due, notes its own phase
(for its error metrics) and then runs it, refreshing whatever table handles it holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pyiceberg.catalog import Catalog

from insightloop.lake.catalog import NAMESPACES
from insightloop.lake.maintenance import SnapshotRetention, maintain
from insightloop.lake.ownership import Owns, any_table
from insightloop.processor.compaction import Compacted, Compactor
from insightloop.processor.metrics import ProcessorMetrics

#: Look for small files to compact after this many turns, or this long when idle.
COMPACT_EVERY_BATCHES = 20
COMPACT_IDLE_SECONDS = 60.0
#: Expire old snapshots this often (and once at start-up).
MAINTAIN_EVERY_SECONDS = 30.0


class Housekeeping:
    """When compaction and snapshot expiry of one process's tables are due, and running them."""

    def __init__(
        self,
        catalog: Catalog,
        compactor: Compactor | None = None,
        retention: SnapshotRetention | None = None,
        namespaces: Sequence[str] = NAMESPACES,
        metrics: ProcessorMetrics | None = None,
        *,
        compact_every: int = COMPACT_EVERY_BATCHES,
        maintain_every: float = MAINTAIN_EVERY_SECONDS,
        max_tables: int | None = None,
        owns: Owns = any_table,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``max_tables``: rewrite at most this many tables per compaction, and go on with the
        rest on the next turn (None: every table at once). Without a compactor nor a
        retention there is nothing to do (the default)."""
        self.compactor = compactor
        self.retention = retention
        self._catalog = catalog
        self._namespaces = namespaces
        self._owns = owns
        self._metrics = metrics or ProcessorMetrics()
        self._compact_every = compact_every
        self._maintain_every = maintain_every
        self._max_tables = max_tables
        self._clock = clock
        self._turns_since_compaction = 0
        self._compacting = False
        self._last_compaction = clock()
        self._last_maintenance: float | None = None

    def turn_done(self) -> None:
        """Count one turn that committed something."""
        self._turns_since_compaction += 1

    def compaction_due(self, idle: bool) -> bool:
        """Every few turns, now and then while idle, or while a bounded round has tables left."""
        if self.compactor is None:
            return False
        due = self._turns_since_compaction >= self._compact_every or (
            idle and self._clock() - self._last_compaction >= COMPACT_IDLE_SECONDS
        )
        return due or self._compacting

    def compact(self) -> list[Compacted]:
        """Compact the tables (at most ``max_tables`` of them); returns what was rewritten."""
        assert self.compactor is not None, "compact() without a compactor"
        self._turns_since_compaction = 0
        self._last_compaction = self._clock()
        done = self.compactor.compact_all(max_tables=self._max_tables)
        self._compacting = self._max_tables is not None and bool(done)
        return done

    def maintenance_due(self) -> bool:
        """Every ``maintain_every`` seconds, and on the first call."""
        last = self._last_maintenance
        return self.retention is not None and (last is None or self._clock() - last >= self._maintain_every)

    def expire_snapshots(self) -> None:
        """Expire old snapshots of this process's tables, counting them per table."""
        assert self.retention is not None, "expire_snapshots() without a retention"
        self._last_maintenance = self._clock()
        for done in maintain(self._catalog, self.retention, namespaces=self._namespaces, owns=self._owns):
            self._metrics.snapshots_expired.labels(done.table).inc(done.expired)
