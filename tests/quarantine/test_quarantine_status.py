"""``insightloop status``'s quarantine section: counts per source, kind and contract over the
last hour, the last day and ever, as of a given time (never the wall clock)."""

from __future__ import annotations

from io import StringIO

from quarantine_support import NOW
from rich.console import Console

from insightloop.cli.status import QuarantineCount, collect
from insightloop.cli.status_view import render
from insightloop.config import Config


def test_counts_per_window(lake: Config) -> None:
    quarantine = collect(lake, now=NOW.timestamp()).quarantine
    assert (quarantine.last_hour, quarantine.last_day, quarantine.total) == (3, 4, 5)
    assert quarantine.per_minute == 3 / 60
    assert quarantine.counts == [
        QuarantineCount("backend", "contract_violation", "track/dashboard_viewed/1-0-0", 1, 1, 1, 1 / 60),
        QuarantineCount("backend", "contract_violation", "track/invite_sent/2-0-0", 1, 1, 1, 1 / 60),
        QuarantineCount("backend", "missing_field", None, 1, 1, 1, 1 / 60),
        QuarantineCount("web", "malformed_json", None, 0, 1, 1, 0.0),
        QuarantineCount("web", "contract_violation", "track/report_created/1-0-1", 0, 0, 1, 0.0),
    ]


def test_shown_to_people(lake: Config) -> None:
    out = StringIO()
    render(collect(lake, now=NOW.timestamp()), Console(file=out, width=200))
    text = out.getvalue()
    assert "Quarantine: 3 rows in the last hour (0.1/min), 4 in 24 h, 5 in all" in text
    assert "track/invite_sent/2-0-0" in text


def test_an_empty_lake_has_an_empty_quarantine(config: Config) -> None:
    quarantine = collect(config, now=NOW.timestamp()).quarantine
    assert (quarantine.total, quarantine.counts) == (0, [])
