"""Quarantine counts over time windows, for ``insightloop status`` and dashboards.

Per (source, kind, contract): rows received in the last hour, the last 24 hours and ever,
counted in one pass over the three columns it needs (plus ``received_at``), and the rate
over the last hour. Windows are on ``received_at`` (when the collector received the event),
the column the table is partitioned by.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from insightloop.quarantine.reading import VIEW

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Quarantined rows of one (source, kind, contract) in each window."""

    source: str | None
    kind: str | None
    contract: str | None
    last_hour: int
    last_day: int
    total: int

    @property
    def per_minute(self) -> float:
        """Rows per minute over the last hour."""
        return self.last_hour / 60


def window_counts(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> list[WindowCounts]:
    """Counts per (source, kind, contract) as of ``now``: most rows in the last hour first."""
    rows = con.execute(
        f"""
        SELECT source, kind, contract,
               count(*) FILTER (WHERE received_at >= ?) AS hour,
               count(*) FILTER (WHERE received_at >= ?) AS day,
               count(*) AS total
        FROM {VIEW}
        GROUP BY ALL
        ORDER BY hour DESC, day DESC, total DESC, source, kind, contract
        """,
        [now - HOUR, now - DAY],
    ).fetchall()
    return [WindowCounts(s, k, c, int(h), int(d), int(t)) for s, k, c, h, d, t in rows]
