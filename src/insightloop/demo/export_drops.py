"""The demo's third source: daily CRM exports dropped into the landing zone while the traffic
runs: what the demo drops, and when.

``plan_drops`` writes the files with ``exports.generate.daily_exports`` into a staging folder
(outside the landing zone) and schedules their drops: each day's file in turn, then day 1's
file again under another name (the same bytes: the loader must call it ``unchanged``), then a
corrected version of day 2's file (``exports.generate.corrected_export``) under its name:
the loader must load it *replacing* the first. ``ExportRun`` moves each file into
``<landing>/<source>/<entity>/`` at its time (a rename, so the loader never sees half a
file); a file whose name an earlier drop took waits until that one has a final status, so the
loader sees both (``by_name``, ``status_of``, ``final_status``, ``pending``: each drop's
status among the loader's).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from insightloop.exports.generate import Correction, DayWritten, corrected_export, daily_exports
from insightloop.exports.status import LOADED, REJECTED, UNCHANGED, FileStatus

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
