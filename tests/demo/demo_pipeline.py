"""The demo's traffic through the real pipeline, in this process: the collector's parsing,
stage 1's row building and stage 2 (with the repository's contracts); no servers, no log."""

from __future__ import annotations

import gzip
from pathlib import Path

from insightloop.collected import encode_batch
from insightloop.collector.envelope import Refused, parse_batch
from insightloop.collector.ingest import collect, refused
from insightloop.config import Config
from insightloop.demo.traffic import OutgoingBatch
from insightloop.processor.raw_rows import RawRows
from insightloop.processor.stage import DerivedStage
from insightloop.types import LogPosition, LogRecord

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def deliver(
    stage: DerivedStage, config: Config, seq: int, batches: list[OutgoingBatch], received_us: int
) -> None:
    """``batches`` as the collector would log them (one record each), applied by stage 2 as
    raw commit ``seq``."""
    limits = config.collector
    rows = RawRows()
    for offset, batch in enumerate(batches):
        raw_body = gzip.decompress(batch.body)
        source = "web" if batch.write_key == "web-key" else "backend"
        parsed = parse_batch(raw_body, limits.max_nesting_depth)
        if isinstance(parsed, Refused):
            record = refused(parsed.problem, raw_body, source, received_us)
        else:
            limit, depth = limits.max_event_bytes, limits.max_nesting_depth
            record = collect(parsed, source, received_us, None, limit, depth).record
        rows.add(LogRecord(LogPosition("0", seq * 10_000 + offset), encode_batch(record)))
    stage.apply(rows.to_arrow(seq), rows.messages)
