"""``Selection``: parsing user input, and the same rows picked by its SQL and its pyiceberg filter."""

from __future__ import annotations

import datetime as dt

import pytest
from pyiceberg.expressions import AlwaysTrue
from quarantine_support import NOW

from insightloop.config import Config
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cleaned import tables
from insightloop.quarantine import Selection, SelectionError
from insightloop.quarantine.reading import QUARANTINE, open_quarantine


def test_relative_and_iso_times() -> None:
    selection = Selection.parse(since="2h", until="2026-11-02T11:30:00Z", now=NOW)
    assert selection.since == NOW - dt.timedelta(hours=2)
    assert selection.until == dt.datetime(2026, 11, 2, 11, 30, tzinfo=dt.UTC)
    assert Selection.parse(since="3d", now=NOW).since == NOW - dt.timedelta(days=3)
    assert Selection.parse(since="30m", now=NOW).since == NOW - dt.timedelta(minutes=30)
    # A time without a zone is UTC; another zone is converted.
    assert Selection.parse(since="2026-11-02T10:00:00", now=NOW).since == dt.datetime(
        2026, 11, 2, 10, tzinfo=dt.UTC
    )
    assert Selection.parse(since="2026-11-02T12:00:00+02:00", now=NOW).since == dt.datetime(
        2026, 11, 2, 10, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kinds": ["contract_violations"]}, "--kind: unknown failure kind 'contract_violations'"),
        ({"since": "yesterday"}, "--since: 'yesterday' is neither an ISO 8601 time"),
        ({"until": "2h ago"}, "--until"),
        ({"since": "1h", "until": "2h"}, "must be before --until"),
        ({"contracts": ["track/a/1-0-0/x"]}, "--contract"),
        ({"contracts": ["track a"]}, "--contract"),
        ({"limit": 0}, "--limit"),
    ],
)
def test_bad_input_is_a_clear_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        Selection.parse(now=NOW, **options)  # type: ignore[arg-type]


def test_nothing_selected_means_everything() -> None:
    selection = Selection.parse(now=NOW)
    assert selection.selects_all()
    assert selection.sql() == ("true", [])
    assert selection.row_filter() == AlwaysTrue()
    assert selection.describe() == "all of quarantine"


def test_sql_binds_every_value_as_a_parameter() -> None:
    selection = Selection.parse(
        sources=["web", "backend"], contracts=["track/invite_sent"], kinds=["no_contract"]
    )
    where, params = selection.sql()
    assert where == "source IN (?, ?) AND kind IN (?) AND (starts_with(contract, ?))"
    assert params == ["web", "backend", "no_contract", "track/invite_sent/"]


CASES: list[tuple[dict[str, object], set[str]]] = [
    ({}, {"rc-drift", "dv-bad", "inv-bad", "anon*", "garbage*"}),
    ({"sources": ["backend"]}, {"dv-bad", "inv-bad", "anon*"}),
    ({"streams": ["rejected"]}, {"anon*", "garbage*"}),
    ({"kinds": ["contract_violation"]}, {"rc-drift", "dv-bad", "inv-bad"}),
    ({"kinds": ["missing_field", "malformed_json"]}, {"anon*", "garbage*"}),
    ({"contracts": ["track/report_created/1-0-1"]}, {"rc-drift"}),
    ({"contracts": ["track/report_created/1-0-0"]}, set()),
    ({"contracts": ["track/dashboard_viewed"]}, {"dv-bad"}),
    ({"contracts": ["track/invite", "track"]}, {"rc-drift", "dv-bad", "inv-bad"}),
    ({"since": "1h"}, {"dv-bad", "inv-bad", "anon*"}),
    ({"since": "1d", "until": "1h"}, {"garbage*"}),
    ({"until": "2026-11-01T00:00:00Z"}, {"rc-drift"}),
    ({"event_ids": ["dv-bad", "rc-drift"], "kinds": ["contract_violation"]}, {"dv-bad", "rc-drift"}),
]


@pytest.mark.parametrize(("options", "expected"), CASES)
def test_sql_and_row_filter_pick_the_same_rows(
    lake: Config, options: dict[str, object], expected: set[str]
) -> None:
    selection = Selection.parse(now=NOW, **options)  # type: ignore[arg-type]
    where, params = selection.sql()
    with open_quarantine(lake) as con:
        assert con is not None
        found = con.execute(f"SELECT event_id, origin FROM quarantined WHERE {where}", params).fetchall()
    by_sql = {_name(event_id, origin) for event_id, origin in found}
    scanned = open_catalog(lake).load_table(QUARANTINE).scan(row_filter=selection.row_filter()).to_arrow()
    by_scan = {
        _name(e, o)
        for e, o in zip(scanned["event_id"].to_pylist(), scanned["origin"].to_pylist(), strict=True)
    }
    assert by_sql == by_scan == expected


def _name(event_id: str, origin: str) -> str:
    """Rejected rows have ids made from their log position: name them by what they were."""
    if not event_id.startswith("rej-"):
        return event_id
    return "anon*" if origin.startswith("log:0:2:") else "garbage*"


def test_the_table_name_is_stage_2s() -> None:
    assert QUARANTINE == tables.QUARANTINE
