"""Stage 2 alone: raw rows → the cleaned tables (``CleanedStage.apply``), one core.

Raw rows are built the way stage 1 builds them (``processor.raw_rows.RawRows`` over
``/v1/batch`` records of 100 ~1.5 KB track events, ``benchmarks.events``), with the decoded
messages stage 1 hands over. The first batch (tables created) is a warm-up; then
micro-batches of ``max_batch_events`` (50K) are applied and timed:

- ``cleaned_apply_events_per_s``: whole ``apply`` (build, commits, seen ids + watermark),
  wall time; ``cleaned_apply_events_per_cpu_s`` the same over the process's CPU time (all
  threads: pyiceberg writes Parquet in a pool), which other load on the box disturbs less;
- ``cleaned_build_events_per_s``: ``apply`` without the Iceberg commits (parse, dedup,
  Arrow tables);
- ``cleaned_commit_events_per_s``: events over the commit time alone (Parquet writing and
  Iceberg commits, one per touched table), and ``cleaned_commits_per_batch`` with the
  ``cleaned_commit_seconds_per_batch``;
- ``cleaned_replay_events_per_s``: ``apply`` without decoded messages (the catch-up path,
  which decodes every payload itself);
- ``cleaned_contracts_*``: the same ``apply`` with every event checked against a contract
  that it passes (``contracts.mode = "enforce"``, one contract per event name written for the
  run, every property typed and ``additionalProperties: false``), and
  ``cleaned_contracts_cost_pct``: how much of the throughput validation costs. The figures
  without ``contracts`` run with ``contracts.mode = "off"``.

Run alone: ``python -m benchmarks.bench_cleaned``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import orjson
import pyarrow as pa

from benchmarks.events import EVENT_NAMES, track_events
from insightloop.collected import FORMAT_VERSION, CollectedBatch, CollectedEvent, encode_batch
from insightloop.config import load_config
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cleaned.naming import snake_case
from insightloop.processor.cleaned.stage import CleanedStage
from insightloop.processor.raw_rows import RawRows
from insightloop.segment.message import Message
from insightloop.types import LogPosition, LogRecord

BATCH = 50_000
BATCHES = 5  # the first is a warm-up
PER_RECORD = 100
CONTEXT = b'{"library":{"name":"analytics-python","version":"2.3.3"},"ip":"198.51.100.7"}'


def raw_batches(batches: int = BATCHES, size: int = BATCH) -> list[tuple[pa.Table, list[Message | None]]]:
    """``batches`` raw commits of ``size`` events, numbered 1, 2, …, as stage 1 makes them."""
    events = track_events(batches * size, seed=3)
    received = int(time.time() * 1_000_000)
    out = []
    for seq in range(1, batches + 1):
        rows = RawRows()
        first = (seq - 1) * size
        for offset in range(first, first + size, PER_RECORD):
            chunk = events[offset : offset + PER_RECORD]
            batch = CollectedBatch(
                FORMAT_VERSION,
                "web",
                received,
                "2026-11-26T10:00:00.000Z",
                CONTEXT,
                [CollectedEvent(f"b-{offset + i:012d}", "track", raw) for i, raw in enumerate(chunk)],
            )
            rows.add(LogRecord(LogPosition("0", offset // PER_RECORD), encode_batch(batch)))
        out.append((rows.to_arrow(seq), rows.messages))
    return out


#: The benchmark events' properties, as a contract (each value's JSON Schema).
PROPERTIES: dict[str, object] = {
    "report_id": {"type": "integer", "minimum": 0},
    "dashboard": {"type": "string", "maxLength": 200},
    "filters": {"type": "array", "items": {"type": "string"}},
    "row_count": {"type": "integer", "minimum": 0},
    "duration_ms": {"type": "number", "minimum": 0},
    "shared": {"type": "boolean"},
    "workspace_id": {"type": "string", "pattern": "^ws-"},
    "feature_flag": {"type": "string"},
    "source_view": {"type": "string", "enum": ["grid", "list"]},
    "query_text": {"type": "string", "maxLength": 2000},
    "breadcrumb": {"type": "string"},
    "experiment": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "variant": {"type": "string", "enum": ["control", "b"]}},
        "required": ["id", "variant"],
        "additionalProperties": False,
    },
    "chart_type": {"type": "string", "enum": ["bar", "line", "table", "pie"]},
    "columns": {"type": "integer", "minimum": 1},
    "export_format": {"type": "string", "enum": ["csv", "xlsx", "pdf"]},
    "description": {"type": "string", "maxLength": 500},
}


def write_contracts(root: Path) -> Path:
    """A contracts folder the benchmark events all pass: one contract per event name."""
    for event in EVENT_NAMES:
        name = snake_case(event)
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "self": {"vendor": "insightloop", "name": name, "format": "jsonschema", "version": "1-0-0"},
            "type": "object",
            "properties": PROPERTIES,
            "required": ["report_id", "workspace_id"],
            "additionalProperties": False,
        }
        folder = root / "track" / name
        folder.mkdir(parents=True)
        (folder / "1-0-0.json").write_bytes(orjson.dumps(schema))
    return root


def bench(
    root: Path,
    batches: list[tuple[pa.Table, list[Message | None]]],
    decoded: bool,
    contracts: Path | None = None,
) -> dict[str, float]:
    """Per-batch figures of the timed batches; the best batch counts (the box is shared:
    other load only ever slows a batch down). Contracts are off unless ``contracts`` is a folder."""
    environ = {"INSIGHTLOOP_DATA_DIR": str(root), "INSIGHTLOOP__CONTRACTS__MODE": "off"}
    if contracts is not None:
        environ = {
            "INSIGHTLOOP_DATA_DIR": str(root),
            "INSIGHTLOOP__CONTRACTS__DIR": str(contracts),
            "INSIGHTLOOP__CONTRACTS__MODE": "enforce",
        }
    config = load_config(environ=environ)
    stage = CleanedStage(open_catalog(config), config)
    warmup, *timed = batches
    stage.apply(warmup[0], warmup[1] if decoded else None)
    wall: list[float] = []
    cpu: list[float] = []
    build: list[float] = []
    commit: list[float] = []
    checks: list[float] = []
    commits = 0
    for raw, messages in timed:
        start = time.perf_counter()
        cpu_start = time.process_time()
        stage.apply(raw, messages if decoded else None)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        build.append(stage.stats.build_seconds)
        commit.append(stage.stats.commit_seconds)
        checks.append(stage.stats.contract_seconds)
        assert stage.stats.contract_quarantined == 0, "the benchmark events must pass the contracts"
        commits += stage.stats.tables
    size = timed[0][0].num_rows
    return {
        "events_per_s": size / min(wall),
        "events_per_cpu_s": size / min(cpu),
        "build_events_per_s": size / min(build),
        "commit_events_per_s": size / min(commit),
        "commits_per_batch": commits / len(timed),
        "commit_seconds_per_batch": min(commit),
        "contract_seconds_per_batch": min(checks),
    }


def run() -> dict[str, float]:
    batches = raw_batches()
    with tempfile.TemporaryDirectory(prefix="bench-cleaned-") as tmp:
        decoded = bench(Path(tmp) / "decoded", batches, decoded=True)
        replay = bench(Path(tmp) / "replay", batches[:3], decoded=False)
        folder = write_contracts(Path(tmp) / "contracts")
        checked = bench(Path(tmp) / "contracts-decoded", batches, decoded=True, contracts=folder)
    return {
        "cleaned_apply_events_per_s": decoded["events_per_s"],
        "cleaned_apply_events_per_cpu_s": decoded["events_per_cpu_s"],
        "cleaned_build_events_per_s": decoded["build_events_per_s"],
        "cleaned_commit_events_per_s": decoded["commit_events_per_s"],
        "cleaned_commits_per_batch": decoded["commits_per_batch"],
        "cleaned_commit_seconds_per_batch": decoded["commit_seconds_per_batch"],
        "cleaned_replay_events_per_s": replay["events_per_s"],
        "cleaned_contracts_apply_events_per_s": checked["events_per_s"],
        "cleaned_contracts_apply_events_per_cpu_s": checked["events_per_cpu_s"],
        "cleaned_contracts_check_seconds_per_batch": checked["contract_seconds_per_batch"],
        "cleaned_contracts_cost_pct": 100 * (1 - checked["events_per_cpu_s"] / decoded["events_per_cpu_s"]),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:40s} {value:14,.2f}")
