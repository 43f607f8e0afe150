"""`make bench`: every benchmark, with baselines measured in the same run, printed and saved
to benchmarks/out/latest.json. Record notable runs in benchmarks/RESULTS.md."""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from benchmarks.events import track_events
from insightloop.segment.message import Message

OUT = Path(__file__).parent / "out"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def baselines(n: int = 100_000) -> dict[str, float]:
    """The floors of this machine for the same ~1.5 KB events, one core."""
    events = track_events(n, seed=9)
    decoder = msgspec.json.Decoder(Message)
    start = time.perf_counter()
    for i in range(0, n, 1000):
        _ = [decoder.decode(e) for e in events[i : i + 1000]]
    decode = n / (time.perf_counter() - start)

    path = OUT / "baseline.jsonl"
    path.write_bytes(b"\n".join(events))
    con = duckdb.connect()
    con.execute("SET threads = 1")
    start = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM read_json('{path}', format='newline_delimited')) "
        f"TO '{OUT / 'baseline.parquet'}' (FORMAT parquet, COMPRESSION zstd)"
    )
    duck = n / (time.perf_counter() - start)
    path.unlink()
    (OUT / "baseline.parquet").unlink()
    return {"msgspec_decode_events_per_s": decode, "duckdb_json_to_parquet_events_per_s": duck}


def main() -> int:
    OUT.mkdir(exist_ok=True)
    results: dict[str, Any] = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(json.dumps(results["machine"], indent=2))
    results["baseline"] = baselines()
    print("baseline:", json.dumps(results["baseline"], indent=2))
    only = sys.argv[1:]
    for name in (
        "bench_log",
        "bench_processor",
        "bench_cleaned",
        "bench_contracts",
        "bench_http",
        "bench_cdc_reader",
        "bench_cdc_apply",
        "bench_cdc_e2e",
        "bench_exports",
    ):
        if only and name not in only:
            continue
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ImportError as exc:
            print(f"{name}: not available ({exc})")
            continue
        print(f"== {name} …", flush=True)
        figures = module.run()
        results[name] = figures
        for key, value in figures.items():
            line = f"  {key:45s} {value:14,.2f}"
            if key.endswith("events_per_s"):
                ratio = value / results["baseline"]["duckdb_json_to_parquet_events_per_s"]
                line += f"   ({ratio:.2f}× DuckDB JSON→Parquet, 1 thread)"
            print(line, flush=True)
    (OUT / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"saved {OUT / 'latest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
