"""The demo's contract trouble: schema drift from a set time, events that break their
contracts, an event with none; and the report counting, from the tables, where they went."""

from __future__ import annotations

import datetime as dt
import gzip
from io import StringIO
from pathlib import Path

import orjson
import pytest
from demo_pipeline import CONTRACTS, deliver
from rich.console import Console

from insightloop.cli.demo_view import BROKEN, DRIFT, NO_CONTRACT_TABLE, render_summary
from insightloop.config import Config, load_config
from insightloop.contracts.registry import Registry
from insightloop.contracts.validate import OK, validate
from insightloop.demo.catalog import DRIFT_EVENT, DRIFT_PROPERTY, NO_CONTRACT_EVENT
from insightloop.demo.driver import TrafficStats
from insightloop.demo.report import LakeProbe, LatencyTracker, Outcome, summarize
from insightloop.demo.traffic import DEMO_SHARES, OutgoingBatch, Traffic
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cleaned.stage import CleanedStage
from insightloop.segment.message import to_micros

NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)
BATCHES = 240
DRIFT_AT = NOW + dt.timedelta(seconds=BATCHES // 2)


@pytest.fixture(scope="module")
def batches() -> list[OutgoingBatch]:
    traffic = Traffic("web-key", "mobile-key", seed=5, shares=DEMO_SHARES, drift_at=DRIFT_AT)
    return [traffic.next_batch(NOW + dt.timedelta(seconds=i)) for i in range(BATCHES)]


def events(batch: OutgoingBatch) -> dict[str, dict[str, object]]:
    return {str(e.get("messageId")): e for e in orjson.loads(gzip.decompress(batch.body))["batch"]}


def test_drift_starts_at_its_time_and_breaks_the_contract(batches: list[OutgoingBatch]) -> None:
    registry = Registry.load(CONTRACTS)
    drifted = [(i, batch) for i, batch in enumerate(batches) if batch.drifted_ids]
    assert drifted and all(NOW + dt.timedelta(seconds=i) >= DRIFT_AT for i, _ in drifted)
    for _, batch in drifted:
        for message_id in batch.drifted_ids:
            event = events(batch)[message_id]
            assert event["event"] == DRIFT_EVENT
            properties = event["properties"]
            assert isinstance(properties, dict) and DRIFT_PROPERTY in properties
            contract = registry.for_message("track", DRIFT_EVENT, None)
            assert contract is not None
            assert {v.keyword for v in validate(contract, properties)} == {"additionalProperties"}


def test_broken_and_uncontracted_events(batches: list[OutgoingBatch]) -> None:
    registry = Registry.load(CONTRACTS)
    broken = [(b, i) for b in batches if not b.retry for i in b.broken_ids]
    free = [(b, i) for b in batches if not b.retry for i in b.no_contract_ids]
    assert len(broken) >= 3 and len(free) >= 3
    keywords: set[str] = set()
    for batch, message_id in broken:
        event = events(batch)[message_id]
        contract = registry.for_message("track", str(event["event"]), None)
        assert contract is not None
        found = validate(contract, event["properties"])
        assert found != OK
        keywords.update(v.keyword for v in found)
        assert message_id not in batch.valid_ids
    assert keywords == {"type", "required"}
    for batch, message_id in free:
        assert events(batch)[message_id]["event"] == NO_CONTRACT_EVENT
        assert registry.for_message("track", NO_CONTRACT_EVENT, None) is None
        assert message_id in batch.valid_ids


def test_the_report_counts_them_from_the_tables(
    batches: list[OutgoingBatch], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSIGHTLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INSIGHTLOOP__CONTRACTS__DIR", str(CONTRACTS))
    config: Config = load_config()
    stage = CleanedStage(open_catalog(config), config)
    stats = TrafficStats()
    seen: set[int] = set()
    for seq, start in enumerate(range(0, BATCHES, BATCHES // 4), start=1):
        deliver(stage, config, seq, batches[start : start + BATCHES // 4], to_micros(NOW) + seq * 1_000_000)
    for batch in batches:
        stats.drift_sent += len(batch.drifted_ids)
        stats.broken_sent += len(batch.broken_ids)
        stats.drift_ids.update(batch.drifted_ids)
        stats.broken_ids.update(batch.broken_ids)
        if batch.batch_id not in seen:
            seen.add(batch.batch_id)
            stats.no_contract_distinct += len(batch.no_contract_ids)
    summary = summarize(config, {DRIFT: stats.drift_ids, BROKEN: stats.broken_ids})

    assert summary.outcomes[DRIFT] == Outcome(stats.drift_sent, stats.drift_sent, 0)
    assert summary.outcomes[BROKEN] == Outcome(stats.broken_sent, stats.broken_sent, 0)
    assert summary.cleaned[NO_CONTRACT_TABLE] == stats.no_contract_distinct
    lines = {(line.kind, line.contract): line for line in summary.quarantine}
    drift_line = lines[("contract_violation", "track/export_downloaded/1-0-0")]
    assert drift_line.rows == stats.drift_sent
    assert f"/{DRIFT_PROPERTY}" in drift_line.example

    out = StringIO()
    render_summary(
        Console(file=out, width=250), stats, summary, LatencyTracker(LakeProbe(config)), 1.0, DRIFT_AT
    )
    text = out.getvalue()
    assert (
        f"'{DRIFT_EVENT}' gained '{DRIFT_PROPERTY}' at 09:32:00 UTC: sent {stats.drift_sent:,} "
        f"({len(stats.drift_ids):,} distinct), quarantined {stats.drift_sent:,} as contract_violation, "
        "loaded 0 ✓"
    ) in text
    assert f"quarantined {stats.broken_sent:,} as contract_violation, loaded 0 ✓" in text
    assert f"loaded {stats.no_contract_distinct:,} in {NO_CONTRACT_TABLE}" in text
    assert "track/export_downloaded/1-0-0" in text
