"""The CDC part of ``insightloop demo``: the application database (the embedded one through
``services.demo_sources``, unless ``cdc.dsn`` names a real one), the workload during the
traffic, the live panel's numbers, the wait for the lake to reach the source's last LSN,
and what the summary shows.

The demo never writes to a database named by ``cdc.dsn``: it captures it as it is. When CDC
is off or the embedded database cannot start, the demo runs without it and says why.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import msgspec
import psycopg
from pyiceberg.catalog import Catalog

from insightloop.config import Config
from insightloop.demo.cdc import (
    CdcSummary,
    LagTracker,
    WorkloadRun,
    applied_lsn,
    behind,
    first_line,
    source_lsn,
    summarize_cdc,
)
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cdc import naming
from insightloop.processor.cdc.raw_rows import CDC_CHANGES
from insightloop.warehouse import lake_exists

#: How often the panel notes the source's WAL position and looks for it in the lake.
LAG_EVERY = 2.0


@dataclass
class CdcOutcome:
    """What the summary shows of CDC."""

    #: Why CDC was not part of this demo (None: it was).
    off: str | None = None
    dsn: str | None = None
    #: The demo ran the workload (the embedded database only).
    workload: bool = False
    changes_made: int = 0
    transactions: int = 0
    schema_changes: int = 0
    workload_error: str | None = None
    #: What the lake still lacked of the source when the demo stopped waiting (None: nothing).
    missing: str | None = None
    lags: list[float] = field(default_factory=list)
    summary: CdcSummary | None = None


class CdcSide:
    def __init__(self, config: Config, rate: float, seed: int) -> None:
        self.config = config
        self.rate = rate
        self.seed = seed
        self.dsn: str | None = None
        self.off: str | None = None
        self.embedded = False
        self.workload: WorkloadRun | None = None
        self.lag = LagTracker()
        self.target: int | None = None
        self.missing: str | None = "the demo has not waited for the lake yet"
        self._catalog: Catalog | None = None
        self._next_lag = 0.0

    @property
    def enabled(self) -> bool:
        return self.dsn is not None

    def start_source(self, stack: ExitStack) -> None:
        """Start (or reuse) the embedded database for as long as ``stack`` is open."""
        if not self.config.cdc.enabled:
            self.off = "off (cdc.enabled = false): the demo runs the Segment pipeline only"
            return
        from insightloop.cli.services import demo_sources

        try:
            dsn = stack.enter_context(demo_sources(self.config))
        except Exception as exc:  # whatever stops the database, the Segment demo still runs
            self.off = f"off: the demo application database could not start ({first_line(exc)})"
            return
        self.embedded = dsn is not None
        self.dsn = dsn or self.config.cdc.dsn
        stack.callback(self._close)

    def services_config(self) -> Config:
        """The config whose ``pipeline_services`` the demo runs: no CDC services when off."""
        if self.enabled:
            return self.config
        cdc = msgspec.structs.replace(self.config.cdc, enabled=False)
        return msgspec.structs.replace(self.config, cdc=cdc)

    def start_workload(self, duration: float | None, schema_change_after: float) -> None:
        """The workload on the embedded database, changing the schema ``schema_change_after``
        seconds in (at the configured rate); never on a database named by ``cdc.dsn``."""
        if not self.embedded or self.dsn is None:
            return
        at = max(int(self.rate * schema_change_after), 20)
        self.workload = WorkloadRun(self.dsn, self.rate, duration, self.seed, at)
        self.workload.start()

    def probe(self, now: float) -> None:
        """Note the source's WAL position while the workload runs; time the lake reaching it."""
        if self.dsn is None or now < self._next_lag:
            return
        self._next_lag = now + LAG_EVERY
        try:
            if self.workload is not None and self.target is None:
                self.lag.note(self._source_lsn(), now)
            if self.lag.pending and (catalog := self._lake()) is not None:
                self.lag.applied(applied_lsn(catalog), now)
        except Exception:  # a table being committed to right now, the source restarting: later
            self._catalog = None

    def stop_workload(self) -> None:
        """Stop the workload and note the source's WAL position the lake must reach."""
        if self.workload is not None:
            self.workload.stop()
            self.workload.join()
        if self.dsn is None:
            return
        try:
            self.target = self._source_lsn()
        except psycopg.Error as exc:
            self.missing = f"the source's WAL position could not be read: {first_line(exc)}"

    def caught_up(self) -> bool:
        """Whether the lake holds every change of the source up to ``target``."""
        if self.dsn is None:
            return True
        if self.target is None:
            return False
        try:
            self.missing = behind(self.config, self.target, self._lake())
        except Exception as exc:  # raw being committed to right now: look again next time
            self._catalog = None
            self.missing = first_line(exc)
        if self.missing is None:
            self.lag.drained(time.monotonic())
        return self.missing is None

    def panel(self, rows: dict[str, int]) -> str | None:
        """The live panel's CDC line (``rows``: rows per lake table from snapshot summaries)."""
        if self.dsn is None:
            return None
        applied = sum(
            n
            for name, n in rows.items()
            if name.startswith(f"{naming.CLEANED}.{naming.PREFIX}") and name.endswith(naming.HISTORY_SUFFIX)
        )
        made = ""
        if self.workload is not None:
            stats = self.workload.stats
            made = f"workload {stats.changes:,} changes ({stats.schema_changes} schema changes) · "
            if self.workload.error:
                made += f"[red]workload stopped: {self.workload.error}[/] · "
        line = f"{made}captured {rows.get(CDC_CHANGES, 0):,} · applied {applied:,} (history rows)"
        if self.lag.lags:
            line += f" · lag {self.lag.lags[-1]:.1f} s"
        return line

    def outcome(self) -> CdcOutcome:
        if self.dsn is None:
            return CdcOutcome(off=self.off)
        out = CdcOutcome(dsn=self.dsn, missing=self.missing, lags=list(self.lag.lags))
        if self.workload is not None:
            stats = self.workload.stats
            out.workload = True
            out.changes_made, out.transactions = stats.changes, stats.transactions
            out.schema_changes, out.workload_error = stats.schema_changes, self.workload.error
        out.summary = summarize_cdc(self.config, self.dsn)
        return out

    def _source_lsn(self) -> int:
        assert self.dsn is not None
        return source_lsn(self.dsn)

    def _lake(self) -> Catalog | None:
        if self._catalog is None and lake_exists(self.config):
            self._catalog = open_catalog(self.config)
        return self._catalog

    def _close(self) -> None:
        if self.workload is not None:
            self.workload.stop()
            self.workload.join(30)
