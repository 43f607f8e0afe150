from __future__ import annotations

from pathlib import Path

import pytest
from quarantine_support import (
    CONTRACTS,
    GARBAGE,
    HALF_AN_HOUR_AGO,
    THREE_HOURS_AGO,
    TWO_DAYS_AGO,
    body,
    ingest,
    track,
)

from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cleaned.stage import CleanedStage


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """A data dir of its own, the repository's contracts, enforced."""
    monkeypatch.delenv("INSIGHTLOOP_CONFIG", raising=False)
    monkeypatch.setenv("INSIGHTLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INSIGHTLOOP__CONTRACTS__DIR", str(CONTRACTS))
    return load_config()


@pytest.fixture
def lake(config: Config) -> Config:
    """Five quarantined rows of three raw commits, made by the real pipeline:

    - web, two days ago: ``rc-drift`` (Report Created with a property its contract forbids),
      beside a valid Report Created;
    - backend, half an hour ago: ``dv-bad`` (Dashboard Viewed: ``widgets`` a string, no
      ``dashboard_name``), ``inv-bad`` (Invite Sent with a ``role`` not in its enum), an
      event with no user or anonymous id (rejected by the collector), and ``free`` (no
      contract: loaded);
    - web, three hours ago: a body that is not JSON (refused by the collector).
    """
    stage = CleanedStage(open_catalog(config), config)
    report = {"report_id": "r1", "report_type": "funnel", "data_source": "events"}
    first = [
        track("rc-ok", "Report Created", report),
        track("rc-drift", "Report Created", {**report, "colour": "red"}),
    ]
    ingest(stage, config, 1, body(first, TWO_DAYS_AGO), "web", TWO_DAYS_AGO)
    anonymous = track("anon", "Report Created", report)
    del anonymous["userId"]
    second = [
        track("dv-bad", "Dashboard Viewed", {"dashboard_id": "dsh_001", "widgets": "12"}),
        track("inv-bad", "Invite Sent", {"invitee_email": "ann@example.com", "role": "owner"}),
        anonymous,
        track("free", "Onboarding Finished", {"step": 3}),
    ]
    ingest(stage, config, 2, body(second, HALF_AN_HOUR_AGO), "backend", HALF_AN_HOUR_AGO)
    ingest(stage, config, 3, GARBAGE, "web", THREE_HOURS_AGO)
    return config
