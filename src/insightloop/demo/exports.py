"""The demo's third source: daily CRM exports dropped into the landing zone while the traffic
runs, and the final account of what the file loader made of them. ``ExportSide`` is the
demo's batch side: it writes the files, has the file loader poll often, drops each file at
its time (``demo.export_drops``: what is dropped and when) and sums up what the loader made of
them (``demo.export_checks``: the final account, counted in the lake).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from insightloop.config import Config
from insightloop.demo.export_checks import ExportSummary, count_lake, lake_counts, summarize_exports
from insightloop.demo.export_drops import ExportRun, by_name, pending, plan_drops, status_of
from insightloop.exports.manifest import Manifest
from insightloop.exports.status import FileStatus, files_status, state_directory

#: How often the file loader looks at the landing zone during the demo (its children's env).
DEMO_POLL_SECONDS = 1.0
POLL_ENV = "INSIGHTLOOP__EXPORTS__POLL_SECONDS"


class ExportSide:
    """The batch source of the demo: off with ``exports.enabled = false`` or a landing zone
    that is not a local folder (the demo writes files only to a folder of its own machine)."""

    def __init__(self, config: Config, duration: float | None, seed: int) -> None:
        self.config = config
        self.duration = duration
        self.seed = seed
        self.off: str | None = None
        self.run: ExportRun | None = None
        #: Seconds since the traffic began, as last told (files due by then are dropped).
        self._elapsed = 0.0
        #: The file loader's poll interval the children were given.
        self.poll_seconds = str(config.exports.poll_seconds)
        if not config.exports.enabled:
            self.off = "off (exports.enabled = false): the demo drops no export files"
        elif "://" in config.exports.landing:
            self.off = f"off: the landing zone {config.exports.landing} is not a local folder"

    @property
    def enabled(self) -> bool:
        return self.off is None

    @property
    def landing(self) -> Path:
        return Path(self.config.exports.landing or self.config.path("landing")).expanduser().absolute()

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        """The children's env: the file loader polls every second unless told otherwise."""
        out = dict(env) if not self.enabled or POLL_ENV in env else {**env, POLL_ENV: str(DEMO_POLL_SECONDS)}
        self.poll_seconds = out.get(POLL_ENV, self.poll_seconds)
        return out

    def prepare(self) -> None:
        """Write the files (before the traffic starts: generating them takes a moment)."""
        if self.enabled:
            staging = self.config.path("demo-exports")
            self.run = ExportRun(plan_drops(staging, self.landing, self.duration, self.seed))

    def drop_due(self, elapsed: float) -> None:
        self._elapsed = max(self._elapsed, elapsed)
        if self.run is not None:
            self.run.drop_due(self._elapsed, self.statuses)

    def drop_all(self) -> None:
        self.drop_due(float("inf"))

    def statuses(self) -> list[FileStatus]:
        try:
            return files_status(self.config)
        except Exception:  # being replaced right now: look again next time
            return []

    def done(self) -> bool:
        """Every file was dropped and has a final status. Drops first what is due and was
        waiting (a correction, for the file it corrects to become final)."""
        if self.run is None:
            return True
        self.drop_due(self._elapsed)
        return all(d.dropped for d in self.run.drops) and not pending(self.run.drops, self.statuses())

    def panel(self) -> str | None:
        """The live panel's line."""
        if self.run is None:
            return None
        found = by_name(self.statuses())
        dropped = self.run.dropped()
        states = [status.status if (status := status_of(d, found)) else "waiting" for d in dropped]
        counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states)) or "none yet"
        return f"dropped {len(dropped)} of {len(self.run.drops)} files into the landing zone: {counts}"

    def summary(self) -> ExportSummary:
        if self.run is None:
            return ExportSummary(off=self.off)
        records = {r.sha256: r for r in Manifest(state_directory(self.config)).records()}
        try:
            counts = count_lake(self.config, lake_counts(self.run.drops))
        except Exception as exc:  # the summary says so; the rest of the report still shows
            summary = summarize_exports(self.run.drops, self.statuses(), {}, records)
            summary.error = f"the tables could not be counted: {exc}"
            return summary
        return summarize_exports(self.run.drops, self.statuses(), counts, records)
