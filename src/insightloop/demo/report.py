"""What the demo's traffic became: progress while it runs, and the final account of what
landed where (per table, quarantine by kind and contract, duplicates removed, late events)
and how fast (time from the collector's 200 to the event being queryable in the warehouse).

Events the demo sent on purpose to break their contracts are looked up by id
(``summarize(..., probes)``): how many of them are in quarantine, and how many in cleaned.

Reads the lake like any user would: snapshot summaries for cheap counts, the warehouse
views for everything else.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import duckdb
from pyiceberg.catalog import Catalog

from insightloop.config import Config
from insightloop.lake.catalog import NAMESPACES, open_catalog
from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.warehouse import Warehouse, attach_catalog, lake_exists
from insightloop.warehouse.views import quote_ident

#: Cleaned tables with one row per distinct event (``users`` is current state, and the
#: per-event tables repeat ``tracks``).
EVENT_TABLES = ("tracks", "pages", "screens", "identifies", "groups", "aliases")
#: Names the message id may have in a cleaned table, in order of preference.
ID_COLUMNS = ("message_id", "event_id", "messageid", "id")
MARKER_TABLE = "cleaned.tracks"
QUARANTINE_TABLE = "quarantine.sdk_events"


class LakeProbe:
    """Cheap, repeated looks at the lake while the demo runs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._catalog: Catalog | None = None

    def catalog(self) -> Catalog | None:
        if self._catalog is None and lake_exists(self.config):
            self._catalog = open_catalog(self.config)
        return self._catalog

    def table_rows(self) -> dict[str, int]:
        """Rows per table (``namespace.name``) from snapshot summaries: no data is read."""
        catalog = self.catalog()
        if catalog is None:
            return {}
        out: dict[str, int] = {}
        for namespace in NAMESPACES:
            for identifier in catalog.list_tables(namespace):
                snapshot = catalog.load_table(identifier).current_snapshot()
                summary = None if snapshot is None else snapshot.summary
                out[".".join(identifier[-2:])] = int(summary.get("total-records", "0")) if summary else 0
        return out

    def visible(self, ids: Collection[str]) -> tuple[set[str], str | None]:
        """Which of ``ids`` can be queried yet, and in which table (cleaned.tracks once it
        exists, else raw.sdk_events)."""
        catalog = self.catalog()
        if catalog is None or not ids:
            return set(), None
        tables = {".".join(i[-2:]) for i in catalog.list_tables("cleaned")}
        target = MARKER_TABLE if MARKER_TABLE in tables else SDK_EVENTS
        with attach_catalog(catalog, [target]) as warehouse:
            column = first_column(warehouse.con, target, ID_COLUMNS)
            if target not in warehouse.pins or column is None:
                return set(), None
            rows = warehouse.con.execute(
                f"SELECT {quote_ident(column)} FROM {target} "
                f"WHERE list_contains(?::VARCHAR[], {quote_ident(column)})",
                [list(ids)],
            ).fetchall()
        return {str(row[0]) for row in rows}, target


def columns_of(con: duckdb.DuckDBPyConnection, qualified: str) -> list[str]:
    schema, name = qualified.split(".", 1)
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return [str(r[0]) for r in rows]


def first_column(con: duckdb.DuckDBPyConnection, qualified: str, candidates: Collection[str]) -> str | None:
    present = {c.lower(): c for c in columns_of(con, qualified)}
    return next((present[c] for c in candidates if c in present), None)


@dataclass(frozen=True)
class QuarantineLine:
    """Quarantined rows of one failure kind and contract, with one of their reasons."""

    kind: str
    contract: str | None
    rows: int
    example: str


@dataclass(frozen=True)
class Outcome:
    """Where the events of one probe (a set of message ids) ended up."""

    quarantined: int = 0
    #: Of ``quarantined``, rows of kind contract_violation.
    contract_violations: int = 0
    #: Rows in cleaned.tracks.
    loaded: int = 0


@dataclass
class LakeSummary:
    cleaned: dict[str, int] = field(default_factory=dict)
    quarantine: list[QuarantineLine] = field(default_factory=list)
    quarantine_total: int = 0
    #: Quarantined by stage 2 (not rejected by the collector): contract failures and the like.
    stage2_quarantined: int = 0
    #: Per probe label, where its events ended up.
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    raw_rows: int = 0
    raw_rejected: int = 0
    raw_distinct_good: int = 0
    #: Rows across ``EVENT_TABLES``: each distinct good event once.
    landed: int = 0
    #: Distinct good events whose event time is more than a day before they were received.
    late: int = 0
    #: Good events whose corrected event time is after they were received (skew not corrected).
    in_future: int = 0

    @property
    def raw_good(self) -> int:
        return self.raw_rows - self.raw_rejected


def summarize(config: Config, probes: Mapping[str, Collection[str]] | None = None) -> LakeSummary:
    """The lake's account of the run; ``probes`` (label → message ids): where those went."""
    summary = LakeSummary()
    if not lake_exists(config):
        return summary
    with attach_catalog(open_catalog(config)) as warehouse:
        con = warehouse.con
        for name in sorted(warehouse.pins):
            if name.startswith("cleaned."):
                summary.cleaned[name] = _count(con, name)
        summary.landed = sum(summary.cleaned.get(f"cleaned.{t}", 0) for t in EVENT_TABLES)
        if QUARANTINE_TABLE in warehouse.pins:
            _quarantine(con, summary)
        for label, ids in (probes or {}).items():
            summary.outcomes[label] = _outcome(warehouse, list(ids))
        if SDK_EVENTS in warehouse.pins:
            _raw(con, summary)
    return summary


def _count(con: duckdb.DuckDBPyConnection, table: str, where: str = "true") -> int:
    row = con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
    return int(row[0]) if row else 0


def _quarantine(con: duckdb.DuckDBPyConnection, summary: LakeSummary) -> None:
    contract = "contract" if "contract" in columns_of(con, QUARANTINE_TABLE) else "CAST(NULL AS VARCHAR)"
    rows = con.execute(
        f"SELECT coalesce(kind, '-'), {contract}, count(*), min(reason) FROM {QUARANTINE_TABLE} "
        "GROUP BY ALL ORDER BY 3 DESC, 1, 2"
    ).fetchall()
    summary.quarantine = [QuarantineLine(str(k), c, int(n), str(example or "")) for k, c, n, example in rows]
    summary.quarantine_total = sum(line.rows for line in summary.quarantine)
    summary.stage2_quarantined = _count(con, QUARANTINE_TABLE, "coalesce(stream, '') <> 'rejected'")


def _outcome(warehouse: Warehouse, ids: list[str]) -> Outcome:
    con = warehouse.con
    quarantined = violations = loaded = 0
    if ids and QUARANTINE_TABLE in warehouse.pins:
        row = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE kind = 'contract_violation') FROM {QUARANTINE_TABLE} "
            "WHERE list_contains(?::VARCHAR[], event_id)",
            [ids],
        ).fetchone()
        quarantined, violations = (int(row[0]), int(row[1])) if row else (0, 0)
    if ids and MARKER_TABLE in warehouse.pins:
        found = con.execute(
            f"SELECT count(*) FROM {MARKER_TABLE} WHERE list_contains(?::VARCHAR[], id)", [ids]
        ).fetchone()
        loaded = int(found[0]) if found else 0
    return Outcome(quarantined, violations, loaded)


def _raw(con: duckdb.DuckDBPyConnection, summary: LakeSummary) -> None:
    row = con.execute(
        f"""
        SELECT count(*),
               count(*) FILTER (WHERE rejection IS NOT NULL),
               count(DISTINCT event_id) FILTER (WHERE rejection IS NULL),
               count(DISTINCT event_id) FILTER (
                   WHERE rejection IS NULL AND event_time < received_at - INTERVAL 1 DAY),
               count(DISTINCT event_id) FILTER (
                   WHERE rejection IS NULL AND event_time > received_at + INTERVAL 5 MINUTE)
        FROM {SDK_EVENTS}
        """
    ).fetchone()
    assert row is not None
    summary.raw_rows, summary.raw_rejected, summary.raw_distinct_good, summary.late, summary.in_future = (
        int(v) for v in row
    )


def percentiles(values: Collection[float]) -> tuple[float, float, float] | None:
    """(median, 95th percentile, max) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95, ordered[-1]


class LatencyTracker:
    """Time from acceptance (HTTP 200) to visibility in the warehouse, for marker events.

    Markers are polled, so each latency is rounded up to the next poll."""

    def __init__(self, probe: LakeProbe) -> None:
        self.probe = probe
        self.pending: dict[str, float] = {}
        self.latencies: list[float] = []
        self.table: str | None = None
        self._known: set[str] = set()

    def add(self, markers: dict[str, float]) -> None:
        for marker, accepted in markers.items():
            if marker not in self._known:
                self._known.add(marker)
                self.pending[marker] = accepted

    def poll(self, now: float) -> None:
        if not self.pending:
            return
        seen, table = self.probe.visible(list(self.pending))
        if table is not None:
            self.table = table
        for marker in seen:
            accepted = self.pending.pop(marker, None)
            if accepted is not None:
                self.latencies.append(max(now - accepted, 0.0))
