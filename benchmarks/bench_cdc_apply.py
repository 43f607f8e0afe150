"""CDC stage 1 + 2 without PostgreSQL: change batches in an in-memory log applied to the
lake (raw.cdc_changes → cleaned.app_<table> current state + history), by the same
``Processor`` + ``CdcStage`` that ``insightloop cdc-processor`` runs.

- ``load``: the initial snapshot, ``TABLES`` tables of ``ROWS`` rows each (``r`` changes);
- ``drain``: a pre-filled log of ``CHANGES`` changes, a realistic mix (70 % updates of
  existing keys, 20 % inserts, 10 % deletes, spread over the tables, 50 per log record, one
  transaction each), drained as fast as it goes: changes/s;
- ``steady``: a producer appends ``RATE`` changes/s for ``STEADY_SECONDS`` while the
  processor runs with 1 s micro-batches; lag = lake commit time − the change's commit time,
  per change (p50/p95) and per batch (its oldest change, p95).

``python -m benchmarks.bench_cdc_apply`` prints the figures.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path

from insightloop.cdc.changes import (
    FORMAT_VERSION,
    CapturedChange,
    ChangeBatch,
    ChangeEvent,
    ChangeSource,
    Column,
    change_event_id,
    encode_batch,
    encode_event,
    snapshot_event_id,
)
from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.log.memory import MemoryLog
from insightloop.processor.cdc.metrics import CdcMetrics
from insightloop.processor.cdc.runner import build_cdc_processor
from insightloop.processor.intake import BatchLimits
from insightloop.processor.runner import Processor

TABLES = 3
ROWS = 100_000
CHANGES = 60_000
PER_RECORD = 50
RATE = 5_000
STEADY_SECONDS = 20.0

COLUMNS = [
    Column("id", "bigint", key=True),
    Column("account_id", "integer"),
    Column("name", "text"),
    Column("email", "text"),
    Column("plan", "text"),
    Column("mrr", "numeric(12,2)"),
    Column("active", "boolean"),
    Column("updated_at", "timestamp with time zone"),
]


class Workload:
    """Keys per table and envelopes of changes to them."""

    def __init__(self, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.tables = [f"public.t{i}" for i in range(TABLES)]
        self.keys: dict[str, list[int]] = {t: list(range(1, ROWS + 1)) for t in self.tables}
        self.next_id = dict.fromkeys(self.tables, ROWS + 1)
        self.lsn = 10_000
        self.tx = 1

    def row(self, ident: int) -> dict[str, object]:
        r = self.rng
        return {
            "id": ident,
            "account_id": r.randint(1, 5000),
            "name": f"customer {ident} {r.random():.6f}",
            "email": f"user{ident}@example.com",
            "plan": r.choice(("free", "team", "business", "enterprise")),
            "mrr": f"{r.randint(0, 99999)}.{r.randint(0, 99):02d}",
            "active": r.random() < 0.9,
            "updated_at": "2026-11-26T10:00:00.123456+00:00",
        }

    def change(self, table: str, op: str, ts_us: int) -> CapturedChange:
        self.lsn += 8
        keys = self.keys[table]
        if op == "c":
            ident = self.next_id[table]
            self.next_id[table] += 1
            keys.append(ident)
            before, after = None, self.row(ident)
        elif op == "u":
            ident = keys[self.rng.randrange(len(keys))]
            before, after = None, self.row(ident)
        else:
            i = self.rng.randrange(len(keys))
            keys[i], keys[-1] = keys[-1], keys[i]
            ident = keys.pop()
            before, after = {"id": ident}, None
        schema, _, name = table.partition(".")
        source = ChangeSource("app", "app", schema, name, self.lsn, ts_us // 1000, self.tx)
        event = ChangeEvent(op, source, ts_us // 1000, before, after, COLUMNS)
        event_id = change_event_id(self.lsn, table, {"id": ident})
        return CapturedChange(event_id, table, op, self.lsn, ts_us, encode_event(event))

    def mixed(self, n: int, ts_us: int) -> list[CapturedChange]:
        out = []
        for _ in range(n):
            roll = self.rng.random()
            op = "u" if roll < 0.7 else "c" if roll < 0.9 else "d"
            out.append(self.change(self.rng.choice(self.tables), op, ts_us))
        self.tx += 1
        return out

    def snapshot(self, table: str, start: int, stop: int, ts_us: int) -> list[CapturedChange]:
        schema, _, name = table.partition(".")
        out = []
        for ident in range(start, stop):
            row = self.row(ident)
            source = ChangeSource("app", "app", schema, name, 5_000, ts_us // 1000, None, "true")
            event = ChangeEvent("r", source, ts_us // 1000, None, row, COLUMNS)
            out.append(
                CapturedChange(
                    snapshot_event_id(table, {"id": ident}, row),
                    table,
                    "r",
                    5_000,
                    ts_us,
                    encode_event(event),
                )
            )
        return out


def record(changes: list[CapturedChange]) -> bytes:
    return encode_batch(ChangeBatch(FORMAT_VERSION, "app", int(time.time() * 1e6), changes))


def _processor(root: Path, log: MemoryLog, max_events: int, max_seconds: float) -> Processor:
    config: Config = load_config(environ={"INSIGHTLOOP_DATA_DIR": str(root)})
    proc = build_cdc_processor(config, log, open_catalog(config), CdcMetrics())
    proc.limits = BatchLimits(max_events, max_seconds)
    proc.housekeeping.compactor = None  # measured separately by bench_processor
    proc.start()
    return proc


def _load(proc: Processor, log: MemoryLog, work: Workload) -> float:
    now = int(time.time() * 1e6)
    for table in work.tables:
        for start in range(1, ROWS + 1, 25_000):
            chunk = work.snapshot(table, start, min(start + 25_000, ROWS + 1), now)
            log.append("shard-0", [record(chunk[i : i + 500]) for i in range(0, len(chunk), 500)])
    started = time.perf_counter()
    while proc.step():
        pass
    return TABLES * ROWS / (time.perf_counter() - started)


def _drain(proc: Processor, log: MemoryLog, work: Workload) -> tuple[float, float]:
    now = int(time.time() * 1e6)
    log.append("shard-0", [record(work.mixed(PER_RECORD, now)) for _ in range(CHANGES // PER_RECORD)])
    started = time.perf_counter()
    batches = 0
    while proc.step():
        batches += 1
    elapsed = time.perf_counter() - started
    return CHANGES / elapsed, elapsed / max(batches, 1)


def _steady(proc: Processor, log: MemoryLog, work: Workload) -> dict[str, float]:
    sent: list[tuple[int, int]] = []  # (log offset, commit time µs) not yet applied
    last: list[int] = []  # the last offset appended
    lock = threading.Lock()
    stop = threading.Event()

    def produce() -> None:
        interval = PER_RECORD / RATE
        due = time.monotonic()
        end = due + STEADY_SECONDS
        while due < end and not stop.is_set():
            ts = int(time.time() * 1e6)
            (position,) = log.append("shard-0", [record(work.mixed(PER_RECORD, ts))])
            with lock:
                sent.append((position.offset, ts))
                last[:] = [position.offset]
            due += interval
            time.sleep(max(due - time.monotonic(), 0.0))

    producer = threading.Thread(target=produce)
    producer.start()
    change_lags: list[float] = []
    batch_lags: list[float] = []
    applied = 0
    started = time.perf_counter()
    while producer.is_alive() or (last and proc.progress.after("shard-0") != last[0]):
        if not proc.step():
            time.sleep(0.01)
            continue
        done_at = time.time() * 1e6
        upto = proc.progress.after("shard-0") or 0
        with lock:
            ready = [s for s in sent if s[0] <= upto]
            sent[:] = [s for s in sent if s[0] > upto]
        lags = [(done_at - ts) / 1e6 for _, ts in ready]
        change_lags.extend(lags * PER_RECORD)
        if lags:
            batch_lags.append(max(lags))
        applied += len(ready) * PER_RECORD
    stop.set()
    producer.join()
    elapsed = time.perf_counter() - started
    change_lags.sort()
    batch_lags.sort()
    return {
        "steady_offered_changes_per_s": RATE,
        "steady_applied_changes_per_s": applied / elapsed,
        "steady_lag_p50_s": _quantile(change_lags, 0.5),
        "steady_lag_p95_s": _quantile(change_lags, 0.95),
        "steady_batch_lag_p95_s": _quantile(batch_lags, 0.95),
        "steady_batches": len(batch_lags),
    }


def _quantile(values: list[float], q: float) -> float:
    return values[min(int(q * len(values)), len(values) - 1)] if values else float("nan")


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-cdc-") as root:
        log = MemoryLog()
        work = Workload()
        proc = _processor(Path(root), log, max_events=50_000, max_seconds=1.0)
        figures = {"load_snapshot_rows_per_s": _load(proc, log, work)}
        print(f"loaded: {figures}", flush=True)
        per_s, per_batch = _drain(proc, log, work)
        print(f"drained: {per_s:,.0f} changes/s, {per_batch:.2f} s/batch", flush=True)
        figures["drain_changes_per_s"] = per_s
        figures["drain_seconds_per_batch"] = per_batch
        figures.update(_steady(proc, log, work))
        return figures


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:45s} {value:14,.2f}")
