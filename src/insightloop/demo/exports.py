"""The demo's third source: daily CRM exports dropped into the landing zone while the traffic
runs, and the final account of what the file loader made of them.

``plan_drops`` writes the files with ``exports.generate.daily_exports`` into a staging folder
(outside the landing zone) and schedules their drops: each day's file in turn, then day 1's
file again under another name (the same bytes: the loader must call it ``unchanged``).
``ExportRun`` moves each file into ``<landing>/<source>/<entity>/`` at its time (a rename, so
the loader never sees half a file). ``summarize_exports`` sets the loader's per-file statuses
against what was dropped and checks the lake's counts (``count(*)`` of the tables, never the
generator's numbers alone):

- ``raw.export_rows`` holds every row of every loaded file (good and bad: the loader's good
  rows plus its bad rows, which the generator's ``rows`` must equal);
- ``quarantine.export_rows`` holds their bad rows;
- ``cleaned.crm_contacts`` holds one row per distinct key of their good rows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from insightloop.config import Config
from insightloop.exports.generate import DayWritten, daily_exports
from insightloop.exports.status import LOADED, REJECTED, UNCHANGED, FileStatus, files_status
from insightloop.lake.catalog import open_catalog
from insightloop.warehouse import attach_catalog, lake_exists

SOURCE = "hubspot"
ENTITY = "contacts"
RAW_TABLE = "raw.export_rows"
QUARANTINE_TABLE = "quarantine.export_rows"
CLEANED_TABLE = f"cleaned.crm_{ENTITY}"
TABLES = (RAW_TABLE, QUARANTINE_TABLE, CLEANED_TABLE)
FINAL = (LOADED, UNCHANGED, REJECTED)
#: Contacts in the first day's file; later days change a quarter of them and add 5 %.
CONTACTS = 2000
DAYS = 3
#: The day (0-based) from which the files gain a ``region`` column: header drift on day 2.
REGION_FROM_DAY = 1
#: When the drops happen: shares of ``--duration``, else seconds after the traffic starts.
DROP_SHARES = (0.1, 0.3, 0.5, 0.7)
DROP_SECONDS = (3.0, 10.0, 17.0, 24.0)
RESENT_SUFFIX = "_resent"


@dataclass
class Drop:
    """One file the demo drops into the landing zone."""

    #: Where it waits (outside the landing zone) until its time.
    staged: Path
    #: Where it lands.
    target: Path
    #: Seconds after the traffic started.
    at: float
    day: DayWritten
    #: What the loader must make of it: ``loaded``, or ``unchanged`` for a re-sent file.
    expect: str = LOADED
    dropped: bool = False

    @property
    def name(self) -> str:
        return self.target.name


def plan_drops(staging: Path, landing: Path, duration: float | None, seed: int) -> list[Drop]:
    """Write the daily exports into ``staging`` and schedule their drops into ``landing``."""
    days = daily_exports(
        staging, days=DAYS, contacts=CONTACTS, source=SOURCE, seed=seed, region_from_day=REGION_FROM_DAY
    )
    offsets = [share * duration for share in DROP_SHARES] if duration else list(DROP_SECONDS)
    folder = landing / SOURCE / ENTITY
    drops = [Drop(day.path, folder / day.path.name, offsets[i], day) for i, day in enumerate(days)]
    first = days[0]
    resent = first.path.with_name(resent_name(first.path.name))
    shutil.copyfile(first.path, resent)
    drops.append(Drop(resent, folder / resent.name, offsets[len(days)], first, expect=UNCHANGED))
    return drops


def resent_name(name: str) -> str:
    """``contacts_2026-11-23.csv`` → ``contacts_2026-11-23_resent.csv`` (same period)."""
    stem, dot, rest = name.partition(".")
    return f"{stem}{RESENT_SUFFIX}{dot}{rest}"


class ExportRun:
    """Drops the planned files into the landing zone at their times."""

    def __init__(self, drops: list[Drop]) -> None:
        self.drops = drops

    def drop_due(self, elapsed: float) -> None:
        """Drop every file whose time has come (``elapsed``: seconds since the traffic began)."""
        for drop in self.drops:
            if not drop.dropped and drop.at <= elapsed:
                drop.target.parent.mkdir(parents=True, exist_ok=True)
                _move(drop.staged, drop.target)
                drop.dropped = True

    def drop_all(self) -> None:
        self.drop_due(float("inf"))

    def dropped(self) -> list[Drop]:
        return [drop for drop in self.drops if drop.dropped]


def _move(staged: Path, target: Path) -> None:
    """A rename, so the file appears whole; across file systems a copy under a hidden name
    (the loader skips those) renamed into place."""
    try:
        os.replace(staged, target)
    except OSError:
        hidden = target.with_name(f".{target.name}")
        shutil.copyfile(staged, hidden)
        os.replace(hidden, target)


def by_name(statuses: Iterable[FileStatus]) -> dict[str, FileStatus]:
    return {status.uri.rsplit("/", 1)[-1]: status for status in statuses}


def pending(drops: Sequence[Drop], statuses: Iterable[FileStatus]) -> list[str]:
    """The dropped files without a final status yet."""
    found = by_name(statuses)
    return [
        drop.name
        for drop in drops
        if drop.dropped and (drop.name not in found or found[drop.name].status not in FINAL)
    ]


@dataclass
class FileLine:
    name: str
    period: str
    expect: str
    #: None: the loader has not finished it.
    status: str | None
    reason: str | None
    #: Good rows and bad rows, as the loader reported them (for an unchanged file: those of
    #: the load it repeats).
    rows: int
    bad_rows: int
    #: The generator's numbers for the file: good rows (its rows less its bad rows), bad rows.
    expected_rows: int
    expected_bad: int

    @property
    def ok(self) -> bool:
        return (
            self.status == self.expect
            and self.rows == self.expected_rows
            and self.bad_rows == self.expected_bad
        )


@dataclass
class TotalCheck:
    table: str
    what: str
    expected: int
    #: None: the table could not be counted (it does not exist).
    found: int | None

    @property
    def ok(self) -> bool:
        return self.found == self.expected


@dataclass
class ExportSummary:
    #: Why batch exports were not part of this demo (None: they were).
    off: str | None = None
    files: list[FileLine] = field(default_factory=list)
    checks: list[TotalCheck] = field(default_factory=list)
    #: Dropped files without a final status when the demo stopped waiting.
    pending: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.off is None
            and self.error is None
            and not self.pending
            and all(f.ok for f in self.files)
            and all(c.ok for c in self.checks)
        )


def summarize_exports(
    drops: Sequence[Drop], statuses: Iterable[FileStatus], counts: Mapping[str, int | None]
) -> ExportSummary:
    """Each dropped file's status against what it must be, and the tables' row counts
    (``counts``: ``count(*)`` per table, None when missing) against the loaded files: rows
    in raw = the loaded files' rows (as the loader reported them, and as the generator wrote
    them: ``FileLine.ok``), bad rows in quarantine, distinct good keys in cleaned. A rejected
    file must have no rows; a re-sent one reports the rows of the load it repeats."""
    found = by_name(statuses)
    summary = ExportSummary(pending=pending(drops, found.values()))
    keys: set[str] = set()
    rows = bad = 0
    for drop in drops:
        if not drop.dropped:
            continue
        status = found.get(drop.name)
        final = status.status if status is not None and status.status in FINAL else None
        rejected = drop.expect == REJECTED
        summary.files.append(
            FileLine(
                name=drop.name,
                period=drop.day.period,
                expect=drop.expect,
                status=final,
                reason=status.reason if status is not None else None,
                rows=status.rows if status is not None else 0,
                bad_rows=status.bad_rows if status is not None else 0,
                expected_rows=0 if rejected else drop.day.rows - drop.day.bad,
                expected_bad=0 if rejected else drop.day.bad,
            )
        )
        if final == LOADED and status is not None:
            rows += status.rows + status.bad_rows
            bad += status.bad_rows
            keys |= drop.day.keys
    loaded = sum(1 for line in summary.files if line.status == LOADED)
    summary.checks = [
        TotalCheck(RAW_TABLE, f"rows of the {loaded} loaded file(s)", rows, counts.get(RAW_TABLE)),
        TotalCheck(QUARANTINE_TABLE, "their bad rows", bad, counts.get(QUARANTINE_TABLE)),
        TotalCheck(CLEANED_TABLE, "distinct keys of their good rows", len(keys), counts.get(CLEANED_TABLE)),
    ]
    return summary


#: How often the file loader looks at the landing zone during the demo (its children's env).
DEMO_POLL_SECONDS = 1.0
POLL_ENV = "INSIGHTLOOP__EXPORTS__POLL_SECONDS"


def count_tables(config: Config) -> dict[str, int | None]:
    """``count(*)`` of the export tables (None: the table does not exist)."""
    if not lake_exists(config):
        return dict.fromkeys(TABLES)
    with attach_catalog(open_catalog(config), TABLES) as warehouse:
        return {
            table: int(warehouse.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            if table in warehouse.pins
            else None
            for table in TABLES
        }


class ExportSide:
    """The batch source of the demo: off with ``exports.enabled = false`` or a landing zone
    that is not a local folder (the demo writes files only to a folder of its own machine)."""

    def __init__(self, config: Config, duration: float | None, seed: int) -> None:
        self.config = config
        self.duration = duration
        self.seed = seed
        self.off: str | None = None
        self.run: ExportRun | None = None
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
        if self.run is not None:
            self.run.drop_due(elapsed)

    def drop_all(self) -> None:
        if self.run is not None:
            self.run.drop_all()

    def statuses(self) -> list[FileStatus]:
        try:
            return files_status(self.config)
        except Exception:  # being replaced right now: look again next time
            return []

    def done(self) -> bool:
        """Every dropped file has a final status (and every file was dropped)."""
        if self.run is None:
            return True
        return all(d.dropped for d in self.run.drops) and not pending(self.run.drops, self.statuses())

    def panel(self) -> str | None:
        """The live panel's line."""
        if self.run is None:
            return None
        found = by_name(self.statuses())
        dropped = self.run.dropped()
        states = [found[d.name].status if d.name in found else "waiting" for d in dropped]
        counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states)) or "none yet"
        return f"dropped {len(dropped)} of {len(self.run.drops)} files into the landing zone: {counts}"

    def summary(self) -> ExportSummary:
        if self.run is None:
            return ExportSummary(off=self.off)
        try:
            counts = count_tables(self.config)
        except Exception as exc:  # the summary says so; the rest of the report still shows
            summary = summarize_exports(self.run.drops, self.statuses(), {})
            summary.error = f"the tables could not be counted: {exc}"
            return summary
        return summarize_exports(self.run.drops, self.statuses(), counts)
