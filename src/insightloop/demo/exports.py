"""The demo's third source: daily CRM exports dropped into the landing zone while the traffic
runs, and the final account of what the file loader made of them.

``plan_drops`` writes the files with ``exports.generate.daily_exports`` into a staging folder
(outside the landing zone) and schedules their drops: each day's file in turn, then day 1's
file again under another name (the same bytes: the loader must call it ``unchanged``), then a
corrected version of day 2's file (``exports.generate.corrected_export``) under its name:
the loader must load it *replacing* the first. ``ExportRun`` moves each file into
``<landing>/<source>/<entity>/`` at its time (a rename, so the loader never sees half a
file); a file whose name an earlier drop took waits until that one has a final status, so the
loader sees both. ``summarize_exports`` sets the loader's per-file statuses against what was
dropped and checks the lake's counts (``count(*)``, never the generator's numbers alone):

- ``raw.export_rows`` holds every row of every loaded file (good and bad: the loader's good
  rows plus its bad rows, which the generator's ``rows`` must equal), the corrected day's
  first version included: raw is append-only;
- ``quarantine.export_rows`` holds the bad rows of each period's latest file (a correction
  takes the place of its first version's);
- ``cleaned.crm_contacts`` holds one row per distinct key of the good rows of each period's
  latest file; for the correction, none of the first version's rows, the corrected e-mails
  wherever the correction's row is a key's latest version, the keys it removed only where
  another day holds them, and the bad row it fixed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from insightloop.config import Config
from insightloop.exports.generate import (
    CORRECTED_DOMAIN,
    Correction,
    DayWritten,
    corrected_export,
    daily_exports,
)
from insightloop.exports.manifest import Manifest
from insightloop.exports.raw_load import FileRecord
from insightloop.exports.status import (
    LOADED,
    REJECTED,
    UNCHANGED,
    FileStatus,
    files_status,
    state_directory,
)
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
#: The day (0-based) whose file is sent again, corrected, after the others.
CORRECTED_DAY = 1
#: When the drops happen: shares of ``--duration``, else seconds after the traffic starts.
DROP_SHARES = (0.1, 0.3, 0.5, 0.7, 0.85)
DROP_SECONDS = (3.0, 10.0, 17.0, 24.0, 31.0)
RESENT_SUFFIX = "_resent"
#: The cleaned table's key and e-mail columns (the repository's contract export/contacts).
KEY_COLUMN = "contact_id"
EMAIL_COLUMN = "email"


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
    #: For a corrected file: what it changed (it replaces the earlier drop of its name).
    correction: Correction | None = None
    #: The loader's final status of this file, kept when a later drop took its name.
    final: FileStatus | None = None

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def label(self) -> str:
        """How the summary names it (a correction has the name of the file it corrects)."""
        return f"{self.name} (corrected)" if self.correction is not None else self.name


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
    correction = corrected_export(days[CORRECTED_DAY], staging / "corrected", seed=seed)
    fixed = correction.day
    drops.append(
        Drop(fixed.path, folder / fixed.path.name, offsets[len(days) + 1], fixed, correction=correction)
    )
    return drops


def resent_name(name: str) -> str:
    """``contacts_2026-11-23.csv`` → ``contacts_2026-11-23_resent.csv`` (same period)."""
    stem, dot, rest = name.partition(".")
    return f"{stem}{RESENT_SUFFIX}{dot}{rest}"


def replaced_drop(drop: Drop, drops: Sequence[Drop]) -> Drop | None:
    """The latest drop before ``drop`` of the same name (whose file ``drop`` replaces)."""
    before = drops[: next(i for i, d in enumerate(drops) if d is drop)]
    earlier = [d for d in before if d.target == drop.target]
    return earlier[-1] if earlier else None


class ExportRun:
    """Drops the planned files into the landing zone at their times."""

    def __init__(self, drops: list[Drop]) -> None:
        self.drops = drops

    def drop_due(self, elapsed: float, statuses: Callable[[], Iterable[FileStatus]] | None = None) -> None:
        """Drop every file whose time has come (``elapsed``: seconds since the traffic began).
        A file that takes an earlier drop's name waits until that one has a final status (in
        ``statuses()``; without them it waits), which is kept (``Drop.final``)."""
        for drop in self.drops:
            if drop.dropped or drop.at > elapsed:
                continue
            earlier = replaced_drop(drop, self.drops)
            if earlier is not None:
                status = final_status(earlier, by_name(statuses())) if statuses is not None else None
                if not earlier.dropped or status is None:
                    continue
                earlier.final = status
            drop.target.parent.mkdir(parents=True, exist_ok=True)
            _move(drop.staged, drop.target)
            drop.dropped = True

    def drop_all(self, statuses: Callable[[], Iterable[FileStatus]] | None = None) -> None:
        self.drop_due(float("inf"), statuses)

    def dropped(self) -> list[Drop]:
        return [drop for drop in self.drops if drop.dropped]


def _move(staged: Path, target: Path) -> None:
    """A rename, so the file appears whole (modified now, as a new upload is); across file
    systems a copy under a hidden name (the loader skips those) renamed into place."""
    os.utime(staged)
    try:
        os.replace(staged, target)
    except OSError:
        hidden = target.with_name(f".{target.name}")
        shutil.copyfile(staged, hidden)
        os.replace(hidden, target)


def by_name(statuses: Iterable[FileStatus]) -> dict[str, FileStatus]:
    return {status.uri.rsplit("/", 1)[-1]: status for status in statuses}


def status_of(drop: Drop, found: Mapping[str, FileStatus]) -> FileStatus | None:
    """The loader's status of the file ``drop`` dropped: the one kept when a later drop took
    its name, else its name's, unless that names other content (a final status has the
    file's sha256: the file that was at that name before)."""
    if drop.final is not None:
        return drop.final
    status = found.get(drop.name)
    if status is None or status.sha256 not in (None, drop.day.sha256):
        return None
    return status


def final_status(drop: Drop, found: Mapping[str, FileStatus]) -> FileStatus | None:
    status = status_of(drop, found)
    return status if status is not None and status.status in FINAL else None


def pending(drops: Sequence[Drop], statuses: Iterable[FileStatus]) -> list[str]:
    """The dropped files without a final status yet."""
    found = by_name(statuses)
    return [drop.label for drop in drops if drop.dropped and final_status(drop, found) is None]


@dataclass
class FileLine:
    name: str
    period: str
    expect: str
    #: The loader's final status, and for a file that replaced another, which one (``loaded,
    #: replacing …``, from the loader's record of the file); None: not finished.
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


@dataclass(frozen=True)
class LakeCount:
    """A number the summary reads from the lake: ``count(*)`` of ``table`` where ``where``
    holds (its ``?`` bound to ``params``), known to the summary by ``name``."""

    name: str
    table: str
    where: str = "true"
    params: tuple[object, ...] = ()


def replacing(replaced: str, name: str) -> str:
    """The status of the file ``name`` loaded in place of the file ``replaced`` (of the same
    name: its earlier version)."""
    return f"{LOADED}, replacing {'the earlier version' if replaced == name else replaced}"


def lake_counts(drops: Sequence[Drop]) -> list[LakeCount]:
    """What ``summarize_exports`` needs counted: each table's rows, and for a dropped
    correction its checks' counts."""
    wanted = [LakeCount(table, table) for table in TABLES]
    for drop in drops:
        first = replaced_drop(drop, drops)
        if drop.dropped and drop.correction is not None and first is not None:
            wanted += _correction_counts(drop, drop.correction, first).values()
    return wanted


def _correction_counts(drop: Drop, correction: Correction, first: Drop) -> dict[str, LakeCount]:
    name = drop.label
    keys = f"list_contains(?::VARCHAR[], {KEY_COLUMN})"
    return {
        "raw first": LakeCount(
            f"{name}: raw first", RAW_TABLE, "starts_with(event_id, ?)", (f"{first.day.sha256}:",)
        ),
        "raw corrected": LakeCount(
            f"{name}: raw corrected", RAW_TABLE, "starts_with(event_id, ?)", (f"{drop.day.sha256}:",)
        ),
        "replaced": LakeCount(f"{name}: replaced", CLEANED_TABLE, "_file_sha256 = ?", (first.day.sha256,)),
        "quarantine first": LakeCount(
            f"{name}: quarantine first", QUARANTINE_TABLE, "sha256 = ?", (first.day.sha256,)
        ),
        "changed": LakeCount(
            f"{name}: changed", CLEANED_TABLE, f"ends_with({EMAIL_COLUMN}, ?)", (f"@{CORRECTED_DOMAIN}",)
        ),
        "removed": LakeCount(f"{name}: removed", CLEANED_TABLE, keys, (sorted(correction.removed),)),
        "fixed": LakeCount(
            f"{name}: fixed",
            CLEANED_TABLE,
            f"{keys} AND _file_sha256 = ?",
            (sorted(correction.fixed), drop.day.sha256),
        ),
    }


def summarize_exports(
    drops: Sequence[Drop],
    statuses: Iterable[FileStatus],
    counts: Mapping[str, int | None],
    records: Mapping[str, FileRecord] | None = None,
) -> ExportSummary:
    """Each dropped file's status against what it must be, and the lake's counts (``counts``,
    by ``LakeCount.name``, None when the table is missing) against the loaded files: rows in
    raw = the loaded files' rows (as the loader reported them, and as the generator wrote
    them: ``FileLine.ok``), bad rows of each period's latest file in quarantine, distinct good
    keys of each period's latest file in cleaned, and a correction's own checks. A rejected
    file must have no rows; a re-sent one reports the rows of the load it repeats.
    ``records``: the loader's record of each loaded file by sha256 (what a correction
    replaced)."""
    found = by_name(statuses)
    summary = ExportSummary(pending=pending(drops, found.values()))
    loaded: list[tuple[Drop, FileStatus]] = []
    for drop in drops:
        if not drop.dropped:
            continue
        status = status_of(drop, found)
        final = status.status if status is not None and status.status in FINAL else None
        shown = final
        if final == LOADED and status is not None:
            loaded.append((drop, status))
            shown = _loaded_as(drop, status, records or {}, drops)
        first = replaced_drop(drop, drops) if drop.correction is not None else None
        rejected = drop.expect == REJECTED
        summary.files.append(
            FileLine(
                name=drop.label,
                period=drop.day.period,
                expect=replacing(first.name, drop.name) if first is not None else drop.expect,
                status=shown,
                reason=status.reason if status is not None else None,
                rows=status.rows if status is not None else 0,
                bad_rows=status.bad_rows if status is not None else 0,
                expected_rows=0 if rejected else drop.day.rows - drop.day.bad,
                expected_bad=0 if rejected else drop.day.bad,
            )
        )
    rows = sum(status.rows + status.bad_rows for _, status in loaded)
    latest = _latest(loaded)
    bad = sum(status.bad_rows for _, status in latest)
    keys = set().union(*(drop.day.keys for drop, _ in latest))
    summary.checks = [
        TotalCheck(RAW_TABLE, f"rows of the {len(loaded)} loaded file(s)", rows, counts.get(RAW_TABLE)),
        TotalCheck(
            QUARANTINE_TABLE, "bad rows of each period's latest file", bad, counts.get(QUARANTINE_TABLE)
        ),
        TotalCheck(
            CLEANED_TABLE,
            "distinct keys of the good rows of each period's latest file",
            len(keys),
            counts.get(CLEANED_TABLE),
        ),
    ]
    for drop, _ in loaded:
        first = replaced_drop(drop, drops)
        if drop.correction is not None and first is not None:
            summary.checks += _correction_checks(drop, drop.correction, first, latest, counts)
    return summary


def _loaded_as(
    drop: Drop, status: FileStatus, records: Mapping[str, FileRecord], drops: Sequence[Drop]
) -> str:
    """``loaded``, or ``loaded, replacing …`` when the loader recorded the file as replacing
    another (named by the drop of that content, else by its sha256)."""
    record = records.get(status.sha256 or "")
    if record is None or record.replaces is None:
        return LOADED
    named = [other.name for other in drops if other.day.sha256 == record.replaces]
    return replacing(named[0] if named else f"the file of sha256 {record.replaces[:12]}", drop.name)


def _latest(loaded: Sequence[tuple[Drop, FileStatus]]) -> list[tuple[Drop, FileStatus]]:
    """Each period's (and part's) latest loaded file: the highest raw sequence, in drop
    order without."""
    latest: dict[tuple[str, str], tuple[Drop, FileStatus]] = {}
    for drop, status in sorted(loaded, key=lambda pair: pair[1].seq or 0):
        latest[(drop.day.period, status.part)] = (drop, status)
    return list(latest.values())


def _correction_checks(
    drop: Drop,
    correction: Correction,
    first: Drop,
    latest: Sequence[tuple[Drop, FileStatus]],
    counts: Mapping[str, int | None],
) -> list[TotalCheck]:
    """A loaded correction: raw keeps both versions; quarantine and cleaned have nothing of
    the first, and cleaned the correction's values wherever its row is a key's latest version."""
    counted = {role: counts.get(c.name) for role, c in _correction_counts(drop, correction, first).items()}
    wins = _latest_versions(drop, latest)
    others = set().union(*(other.day.keys for other, _ in latest if other is not drop))
    name = first.name
    return [
        TotalCheck(
            RAW_TABLE,
            f"rows of {name} as first sent, kept: raw is append-only",
            first.day.rows,
            counted["raw first"],
        ),
        TotalCheck(RAW_TABLE, "rows of its correction", drop.day.rows, counted["raw corrected"]),
        TotalCheck(
            QUARANTINE_TABLE,
            f"bad rows of {name} as first sent: none, replaced",
            0,
            counted["quarantine first"],
        ),
        TotalCheck(CLEANED_TABLE, f"rows from {name} as first sent: none, replaced", 0, counted["replaced"]),
        TotalCheck(
            CLEANED_TABLE,
            f"e-mails the correction fixed (@{CORRECTED_DOMAIN}), where its row is the latest version",
            len(correction.changed & wins),
            counted["changed"],
        ),
        TotalCheck(
            CLEANED_TABLE,
            "keys the correction left out: only those another day holds",
            len(correction.removed & others),
            counted["removed"],
        ),
        TotalCheck(
            CLEANED_TABLE,
            "the bad row it fixed, where its row is the latest version",
            len(correction.fixed & wins),
            counted["fixed"],
        ),
    ]


def _latest_versions(drop: Drop, latest: Sequence[tuple[Drop, FileStatus]]) -> set[str]:
    """Keys of ``drop``'s good rows that are their key's latest version among each period's
    latest file, ranked as cleaned ranks them: the latest ``updated_at``, then the later load
    (none when ``drop`` is not one of those files)."""
    loads = [(other, status.seq or 0) for other, status in latest]
    mine = [seq for other, seq in loads if other is drop]
    if not mine:
        return set()
    rivals = [(other, seq) for other, seq in loads if other is not drop]
    return {
        key
        for key, updated in drop.day.updated.items()
        if all((o.day.updated[key], seq) < (updated, mine[0]) for o, seq in rivals if key in o.day.updated)
    }


#: How often the file loader looks at the landing zone during the demo (its children's env).
DEMO_POLL_SECONDS = 1.0
POLL_ENV = "INSIGHTLOOP__EXPORTS__POLL_SECONDS"


def count_lake(config: Config, wanted: Sequence[LakeCount]) -> dict[str, int | None]:
    """Each of ``wanted`` counted in the lake (None: its table does not exist)."""
    if not lake_exists(config):
        return {count.name: None for count in wanted}
    out: dict[str, int | None] = {}
    with attach_catalog(open_catalog(config), TABLES) as warehouse:
        for count in wanted:
            if count.table not in warehouse.pins:
                out[count.name] = None
                continue
            row = warehouse.con.execute(
                f"SELECT count(*) FROM {count.table} WHERE {count.where}", list(count.params)
            ).fetchone()
            out[count.name] = int(row[0]) if row is not None else None
    return out


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
