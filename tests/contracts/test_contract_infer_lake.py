"""``insightloop contracts infer --from-lake``: a contract proposed from what raw holds."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from insightloop.cli.main import app
from insightloop.collected import encode_batch
from insightloop.collector.envelope import Refused, parse_batch
from insightloop.collector.ingest import collect
from insightloop.config import load_config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.raw_table import ensure_raw_table
from insightloop.processor.raw_rows import RawRows
from insightloop.types import LogPosition, LogRecord

runner = CliRunner()


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSIGHTLOOP_CONFIG", raising=False)
    monkeypatch.setenv("INSIGHTLOOP_DATA_DIR", str(tmp_path / "data"))
    config = load_config()
    events = [
        {"type": "track", "event": "Seat Added", "messageId": f"m{i}", "userId": "u", "properties": props}
        for i, props in enumerate([{"seats": 3, "plan": "team"}, {"seats": 5}, {"seats": 8, "plan": "pro"}])
    ]
    events.append(
        {"type": "track", "event": "Other", "messageId": "o", "userId": "u", "properties": {"x": "y"}}
    )
    parsed = parse_batch(orjson.dumps({"batch": events}), 32)
    assert not isinstance(parsed, Refused)
    record = collect(parsed, "web", 1_777_000_000_000_000, None, 32 * 1024, 32).record
    rows = RawRows()
    rows.add(LogRecord(LogPosition("0", 1), encode_batch(record)))
    ensure_raw_table(open_catalog(config)).append(rows.to_arrow(1))


def test_infer_from_the_lake_proposes_what_producers_send(lake: None) -> None:
    result = runner.invoke(app, ["contracts", "infer", "--from-lake", "--event", "Seat Added"])
    assert result.exit_code == 0, result.output
    header, _, body = result.stdout.partition("\n")
    assert header == "// track/seat_added/1-0-0.json"
    schema = orjson.loads(body)
    assert schema["properties"]["seats"]["type"] == "integer"
    assert schema["required"] == ["seats"]  # plan is missing from one sample
    assert "Proposed from 3 sample(s)" in schema["description"]


def test_infer_needs_exactly_one_source_of_samples(lake: None, tmp_path: Path) -> None:
    neither = runner.invoke(app, ["contracts", "infer"])
    assert neither.exit_code == 2 and "--from-lake" in neither.output
    both = runner.invoke(app, ["contracts", "infer", str(tmp_path / "x.jsonl"), "--from-lake"])
    assert both.exit_code == 2
    none = runner.invoke(app, ["contracts", "infer", "--from-lake", "--event", "Never Sent"])
    assert none.exit_code == 1 and "raw.sdk_events" in none.output
