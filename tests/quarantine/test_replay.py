"""Quarantine replay: fix a contract, replay the quarantined events, run it twice, crash in the
middle: exact row counts in the cleaned tables and in quarantine every time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from insightloop.collected import encode_batch
from insightloop.collector.envelope import Refused, parse_batch
from insightloop.collector.ingest import collect, refused
from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.raw_table import ensure_raw_table
from insightloop.processor.cleaned.stage import CleanedStage
from insightloop.processor.raw_rows import RawRows
from insightloop.quarantine.replay import ReplayQueue
from insightloop.quarantine.selection import Selection
from insightloop.types import LogPosition, LogRecord

RECEIVED_US = 1_777_000_000_000_000
REPORT = {
    "type": "object",
    "properties": {"report_id": {"type": "string"}, "rows": {"type": "integer", "minimum": 0}},
    "required": ["report_id"],
    "additionalProperties": False,
}


def write_contract(root: Path, version: str, body: dict[str, Any]) -> None:
    folder = root / "track" / "report_created"
    folder.mkdir(parents=True, exist_ok=True)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "self": {
            "vendor": "insightloop",
            "name": "report_created",
            "format": "jsonschema",
            "version": version,
        },
        **body,
    }
    (folder / f"{version}.json").write_bytes(orjson.dumps(schema))


@pytest.fixture
def lake(tmp_path: Path) -> tuple[Config, Catalog]:
    write_contract(tmp_path / "contracts", "1-0-0", REPORT)
    config = load_config(
        environ={
            "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
            "INSIGHTLOOP__CONTRACTS__DIR": str(tmp_path / "contracts"),
        }
    )
    return config, open_catalog(config)


def report(message_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "event": "Report Created",
        "userId": "u1",
        "properties": properties,
    }


def send(stage: CleanedStage, catalog: Catalog, seq: int, raw_body: bytes) -> None:
    """One request body through the collector's parsing, stage 1's rows (appended to raw,
    as the processor does) and stage 2."""
    parsed = parse_batch(raw_body, 32)
    received = RECEIVED_US + seq
    if isinstance(parsed, Refused):
        record = refused(parsed.problem, raw_body, "web", received)
    else:
        record = collect(parsed, "web", received, None, 32 * 1024, 32).record
    rows = RawRows()
    rows.add(LogRecord(LogPosition("0", seq), encode_batch(record)))
    table = rows.to_arrow(seq)
    ensure_raw_table(catalog).append(table)
    stage.apply(table, rows.messages)


def batch(*events: dict[str, Any]) -> bytes:
    return orjson.dumps({"batch": list(events)})


def ids(catalog: Catalog, identifier: str) -> list[str]:
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        return []
    column = "id" if identifier.startswith("cleaned") else "event_id"
    return sorted(table.scan(selected_fields=(column,)).to_arrow().column(column).to_pylist())


def quarantine_rows(catalog: Catalog) -> dict[str, dict[str, Any]]:
    rows = catalog.load_table("quarantine.sdk_events").scan().to_arrow().to_pylist()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        assert row["event_id"] not in out, f"{row['event_id']} is in quarantine twice"
        out[row["event_id"]] = row
    return out


def quarantined_then_fixed(config: Config, catalog: Catalog) -> CleanedStage:
    """ok + two contract violations + a body that is not JSON; then the contract relaxed."""
    stage = CleanedStage(catalog, config)
    send(stage, catalog, 1, batch(report("ok", report_id="r1"), report("no-id", rows=3)))
    send(stage, catalog, 2, batch(report("negative", report_id="r3", rows=-1)))
    send(stage, catalog, 3, b'{"batch": [nope')
    assert ids(catalog, "cleaned.report_created") == ["ok"]
    assert len(quarantine_rows(catalog)) == 3
    # The fix: report_id becomes optional (a REVISION); rows must still be >= 0.
    write_contract(Path(config.contracts.dir), "1-1-0", {**REPORT, "required": []})
    return CleanedStage(catalog, config)  # contracts load when the stage starts (a restart)


def test_replay_lands_the_fixed_events_and_keeps_the_rest_once(lake: tuple[Config, Catalog]) -> None:
    config, catalog = lake
    stage = quarantined_then_fixed(config, catalog)
    queue = ReplayQueue(config)
    queue.submit(Selection(kinds=("contract_violation",)))
    [result] = queue.apply_pending(stage, catalog)

    assert (result.selected, result.landed, result.still_failing, result.duplicates) == (2, 1, 1, 0)
    assert result.failing_by_kind == {"contract_violation": 1}
    assert ids(catalog, "cleaned.report_created") == ["no-id", "ok"]
    assert ids(catalog, "cleaned.tracks") == ["no-id", "ok"]
    out = quarantine_rows(catalog)
    assert sorted(row["kind"] for row in out.values()) == ["contract_violation", "malformed_json"]
    negative = out["negative"]
    assert negative["contract"] == "track/report_created/1-1-0"  # judged by today's contract
    assert [v["pointer"] for v in orjson.loads(negative["violations"])] == ["/rows"]

    # Replaying again: the landed event is not found again, the failing one stays once.
    queue.submit(Selection(kinds=("contract_violation",)))
    [again] = queue.apply_pending(stage, catalog)
    assert (again.selected, again.landed, again.still_failing) == (1, 0, 1)
    assert ids(catalog, "cleaned.report_created") == ["no-id", "ok"]
    assert len(quarantine_rows(catalog)) == 2
    assert queue.waiting() == []


def test_the_collectors_rejections_are_reported_not_replayed(lake: tuple[Config, Catalog]) -> None:
    config, catalog = lake
    stage = quarantined_then_fixed(config, catalog)
    queue = ReplayQueue(config)
    queue.submit(Selection())
    [result] = queue.apply_pending(stage, catalog)
    assert (result.selected, result.not_replayable, result.landed, result.still_failing) == (4 - 1, 1, 1, 1)
    assert len(quarantine_rows(catalog)) == 2
    kinds = sorted(row["kind"] for row in quarantine_rows(catalog).values())
    assert kinds == ["contract_violation", "malformed_json"]


def test_a_copy_that_landed_meanwhile_makes_the_replay_a_duplicate(lake: tuple[Config, Catalog]) -> None:
    config, catalog = lake
    stage = quarantined_then_fixed(config, catalog)
    send(stage, catalog, 4, batch(report("negative", report_id="r3", rows=1)))  # a corrected retry
    queue = ReplayQueue(config)
    queue.submit(Selection(event_ids=("negative",)))
    [result] = queue.apply_pending(stage, catalog)
    assert (result.landed, result.duplicates, result.still_failing) == (0, 1, 0)
    assert ids(catalog, "cleaned.report_created") == ["negative", "ok"]
    assert "negative" not in quarantine_rows(catalog)


def test_a_crash_before_the_quarantine_commit_is_finished_by_the_next_run(
    lake: tuple[Config, Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, catalog = lake
    stage = quarantined_then_fixed(config, catalog)
    queue = ReplayQueue(config)
    queue.submit(Selection(kinds=("contract_violation",)))

    def crash(*args: object) -> None:
        raise RuntimeError("killed before the quarantine commit")

    monkeypatch.setattr(stage, "_requarantine", crash)
    with pytest.raises(RuntimeError):
        queue.apply_pending(stage, catalog)
    assert ids(catalog, "cleaned.report_created") == ["no-id", "ok"]  # the tables committed
    assert len(quarantine_rows(catalog)) == 3  # quarantine did not
    # A stream batch quarantined after the claim is not part of this replay.
    restarted = CleanedStage(catalog, config)
    send(restarted, catalog, 5, batch(report("late", rows=-5)))

    [result] = queue.apply_pending(restarted, catalog)
    assert ids(catalog, "cleaned.report_created") == ["no-id", "ok"]  # no second row
    out = quarantine_rows(catalog)
    assert len(out) == 3 and {"late", "negative"} <= set(out) and "no-id" not in out
    assert result.still_failing == 1


def test_the_command_applies_a_replay_itself_when_no_cleaner_runs(lake: tuple[Config, Catalog]) -> None:
    config, catalog = lake
    quarantined_then_fixed(config, catalog)
    environ = {
        "INSIGHTLOOP_DATA_DIR": config.data_dir,
        "INSIGHTLOOP__CONTRACTS__DIR": config.contracts.dir,
        "PATH": str(Path(sys.executable).parent),
    }
    command = [
        str(Path(sys.executable).parent / "insightloop"),
        "quarantine",
        "replay",
        "--kind",
        "contract_violation",
    ]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 landed" in done.stdout and "1 still failing" in done.stdout
    assert ids(catalog, "cleaned.report_created") == ["no-id", "ok"]
    bad = subprocess.run([*command, "--since", "yesterday-ish"], env=environ, capture_output=True, text=True)
    assert bad.returncode == 2
    assert "--since" in bad.stderr
