"""The final account of what the file loader made of the demo's daily CRM exports
(``demo.export_drops``). ``summarize_exports`` sets the loader's per-file statuses against what
was dropped and checks the lake's counts (``count(*)``, never the generator's numbers alone):

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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from insightloop.config import Config
from insightloop.demo.export_drops import (
    CLEANED_TABLE,
    EMAIL_COLUMN,
    FINAL,
    KEY_COLUMN,
    QUARANTINE_TABLE,
    RAW_TABLE,
    TABLES,
    Drop,
    by_name,
    pending,
    replaced_drop,
    status_of,
)
from insightloop.exports.generate import CORRECTED_DOMAIN, Correction
from insightloop.exports.raw_load import FileRecord
from insightloop.exports.status import LOADED, REJECTED, FileStatus
from insightloop.lake.catalog import open_catalog
from insightloop.warehouse import attach_catalog, lake_exists


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
