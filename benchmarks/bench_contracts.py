"""Cost of contract validation (jsonschema-rs) on the hot path, one core.

A ~10-property track event (strings, integers, a number, a boolean, an enum, a date-time
format, a nested object), validated against its contract as:

- already-decoded Python dicts (``validator.is_valid``), the floor;
- raw JSON bytes, decoded with orjson then validated (jsonschema-rs validates Python objects
  only: a ``str`` instance is a JSON string, ``bytes`` are refused), and orjson alone;
- through ``insightloop.contracts.validate`` (dicts and bytes), and for invalid events
  (the slow path that collects every violation); ``validate_batch`` over dicts.

Run: ``python -m benchmarks.bench_contracts``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from insightloop.contracts.registry import DRAFT, Contract, compile_schema
from insightloop.contracts.schemaver import SchemaVer
from insightloop.contracts.validate import OK, validate, validate_batch

EVENTS = 20_000
REPEATS = 3

SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "self": {"vendor": "insightloop", "name": "report_viewed", "format": "jsonschema", "version": "1-0-0"},
    "type": "object",
    "properties": {
        "report_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "report_type": {"type": "string", "enum": ["funnel", "retention", "cohort", "kpi", "segmentation"]},
        "dashboard_name": {"type": "string", "maxLength": 200},
        "row_count": {"type": "integer", "minimum": 0},
        "columns": {"type": "integer", "minimum": 1, "maximum": 500},
        "duration_ms": {"type": "number", "minimum": 0},
        "shared": {"type": "boolean"},
        "workspace_id": {"type": "string"},
        "viewed_at": {"type": "string", "format": "date-time"},
        "experiment": {
            "type": "object",
            "properties": {"id": {"type": "string"}, "variant": {"type": "string"}},
            "required": ["id"],
            "additionalProperties": False,
        },
    },
    "required": ["report_id", "report_type", "row_count", "workspace_id"],
    "additionalProperties": False,
}


def events(n: int, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "report_id": f"rpt_{rng.getrandbits(32):08x}",
            "report_type": rng.choice(["funnel", "retention", "cohort", "kpi", "segmentation"]),
            "dashboard_name": f"Revenue overview {rng.randrange(50)}",
            "row_count": rng.randrange(10**5),
            "columns": rng.randrange(1, 30),
            "duration_ms": round(rng.uniform(5, 5000), 2),
            "shared": rng.random() < 0.3,
            "workspace_id": f"ws-{rng.randrange(200)}",
            "viewed_at": "2026-11-26T09:59:58.120Z",
            "experiment": {"id": f"exp-{rng.randrange(9)}", "variant": rng.choice(["control", "b"])},
        }
        for _ in range(n)
    ]


def _rate(work: Callable[[], object], count: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return count / best


def run() -> dict[str, float]:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})
    try:
        return _measure()
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)


def _measure() -> dict[str, float]:
    validator = compile_schema(SCHEMA)
    contract = Contract("track", "report_viewed", SchemaVer(1, 0, 0), Path("bench"), SCHEMA, validator)
    dicts = events(EVENTS)
    raw = [orjson.dumps(d) for d in dicts]
    bad = [{**d, "row_count": "many", "extra": 1} for d in dicts[: EVENTS // 4]]
    assert all(validator.is_valid(d) for d in dicts)
    assert all(validate(contract, d) == OK for d in raw[:100])
    assert all(len(validate(contract, d)) == 2 for d in bad[:100])
    is_valid, loads = validator.is_valid, orjson.loads
    return {
        "contracts_is_valid_dicts_events_per_s": _rate(lambda: [is_valid(d) for d in dicts], EVENTS),
        "contracts_orjson_loads_only_events_per_s": _rate(lambda: [loads(b) for b in raw], EVENTS),
        "contracts_loads_then_is_valid_events_per_s": _rate(
            lambda: [is_valid(loads(b)) for b in raw], EVENTS
        ),
        "contracts_validate_dicts_events_per_s": _rate(
            lambda: [validate(contract, d) for d in dicts], EVENTS
        ),
        "contracts_validate_batch_dicts_events_per_s": _rate(lambda: validate_batch(contract, dicts), EVENTS),
        "contracts_validate_bytes_events_per_s": _rate(lambda: [validate(contract, b) for b in raw], EVENTS),
        "contracts_validate_invalid_dicts_events_per_s": _rate(
            lambda: [validate(contract, d) for d in bad], len(bad)
        ),
        "contracts_event_bytes": float(sum(map(len, raw)) / len(raw)),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:50s} {value:14,.0f}")
