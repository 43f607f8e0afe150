"""Quarantine and contract metrics, counted by the cleaner's stage after each apply."""

from __future__ import annotations

import pytest
from quarantine_support import HALF_AN_HOUR_AGO, NOW, body, ingest, track

from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cleaned.stage import CleanedStage
from insightloop.processor.cleaner import build_cleaner
from insightloop.processor.metrics import ProcessorMetrics


def test_the_cleaner_counts_quarantined_rows_and_contract_checks(config: Config) -> None:
    metrics = ProcessorMetrics()
    cleaner = build_cleaner(config, open_catalog(config), metrics)
    assert isinstance(cleaner.stage, CleanedStage)
    events = [
        track("bad-1", "Dashboard Viewed", {"dashboard_id": "d1", "widgets": "12"}),
        track("bad-2", "Dashboard Viewed", {"dashboard_id": "d2", "dashboard_name": "x", "widgets": -1}),
        track("ok", "Dashboard Viewed", {"dashboard_id": "d3", "dashboard_name": "x", "widgets": 1}),
        track("free", "Onboarding Finished", {}),
    ]
    ingest(cleaner.stage, config, 1, body(events, NOW), "web", HALF_AN_HOUR_AGO)
    ingest(cleaner.stage, config, 2, b"not json", "backend", HALF_AN_HOUR_AGO)

    sample = metrics.registry.get_sample_value
    labels = {"source": "web", "kind": "contract_violation", "contract": "track/dashboard_viewed/1-0-0"}
    assert sample("insightloop_quarantine_rows_total", labels) == 2
    rejected = {"source": "backend", "kind": "malformed_json", "contract": ""}
    assert sample("insightloop_quarantine_rows_total", rejected) == 1
    assert sample("insightloop_contract_check_seconds_count") == 1  # the second batch had no event to check
    assert sample("insightloop_contract_warnings_total", {"contract": "all"}) is None


def test_warnings_are_counted(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSIGHTLOOP__CONTRACTS__MODE", "warn")
    warn = load_config()
    metrics = ProcessorMetrics()
    cleaner = build_cleaner(warn, open_catalog(warn), metrics)
    events = [
        track(f"bad-{i}", "Dashboard Viewed", {"dashboard_id": "d1", "widgets": "12"}) for i in range(3)
    ]
    ingest(cleaner.stage, warn, 1, body(events, NOW), "web", HALF_AN_HOUR_AGO)
    assert (
        metrics.registry.get_sample_value(
            "insightloop_contract_warnings_total", {"contract": "track/dashboard_viewed/1-0-0"}
        )
        == 3
    )
    assert (
        metrics.registry.get_sample_value(
            "insightloop_quarantine_rows_total",
            {"source": "web", "kind": "contract_violation", "contract": "track/dashboard_viewed/1-0-0"},
        )
        is None
    )
