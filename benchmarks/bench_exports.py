"""Batch exports: loading a multi-GB CSV export into raw + cleaned (+ quarantine), next to
DuckDB's own CSV → Parquet conversion of the same file in the same run (the practical limit
of this machine for reading a CSV and writing Parquet), each in its own process, with its
peak memory (RSS).

- ``duckdb_csv_to_parquet_*``: ``COPY (SELECT * FROM read_csv(file)) TO … (FORMAT parquet)``,
  2 threads (this machine's cores);
- ``load_*``: ``insightloop load FILE`` (hash, read, one raw commit, stage 2 into quarantine
  and ``cleaned.crm_contacts``), wall time of the process;
- ``machines_for_200gb_in_2h``: how many such machines load 200 GB within the 2-hour target.

The file: ``exports.generate.big_csv``, ~120 bytes a row, 10 % of the keys repeated, one
row in 100,000 with a bad date. ``INSIGHTLOOP_BENCH_EXPORT_MB`` sets its size (2048).
``python -m benchmarks.bench_exports`` prints the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import insightloop
from insightloop.exports.generate import big_csv

SIZE_MB = int(os.environ.get("INSIGHTLOOP_BENCH_EXPORT_MB", "2048"))
ROW_BYTES = 122
MB = 1_000_000
CONTRACT = Path(__file__).resolve().parents[1] / "contracts"

DUCKDB_COPY = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET enable_progress_bar = false")
source, target = sys.argv[1], sys.argv[2]
con.execute(f"COPY (SELECT * FROM read_csv('{source}')) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
"""


def _child(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``command``; (wall seconds, peak RSS MiB, output)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed ({process.returncode}): {text[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, text


def _environment(root: Path) -> dict[str, str]:
    src = str(Path(insightloop.__file__).parent.parent)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
        "INSIGHTLOOP_DATA_DIR": str(root / "data"),
        "INSIGHTLOOP__CONTRACTS__DIR": str(CONTRACT),
        "INSIGHTLOOP__EXPORTS__METRICS_PORT": "0",
    }


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as name:
        root = Path(name)
        path = root / "landing" / "bench" / "contacts" / "contacts_2026-11-25.csv"
        path.parent.mkdir(parents=True)
        rows = SIZE_MB * MB // ROW_BYTES
        size = big_csv(path, rows, bad_every=100_000)
        print(f"file: {size / MB:,.0f} MB, {rows:,} rows", flush=True)
        env = _environment(root)

        duck_s, duck_rss, _ = _child(
            [sys.executable, "-c", DUCKDB_COPY, str(path), str(root / "copy.parquet")], env
        )
        (root / "copy.parquet").unlink()
        print(f"duckdb csv→parquet: {size / MB / duck_s:,.1f} MB/s, peak {duck_rss:,.0f} MiB", flush=True)

        load_s, load_rss, _ = _child([sys.executable, "-m", "insightloop", "load", str(path)], env)
        status = json.loads((root / "data" / "exports" / "status.json").read_text())
        (loaded,) = status.values()
        assert loaded["status"] == "loaded", loaded
        print(f"insightloop load: {size / MB / load_s:,.1f} MB/s, peak {load_rss:,.0f} MiB", flush=True)
        load_mbps = size / MB / load_s
        return {
            "file_mb": size / MB,
            "file_rows": float(rows),
            "duckdb_csv_to_parquet_mb_per_s": size / MB / duck_s,
            "duckdb_csv_to_parquet_peak_rss_mib": duck_rss,
            "load_mb_per_s": load_mbps,
            "load_rows_per_s": rows / load_s,
            "load_peak_rss_mib": load_rss,
            "load_vs_duckdb": duck_s / load_s,
            "load_bad_rows": float(loaded["bad_rows"]),
            "machines_for_200gb_in_2h": 200_000 / (load_mbps * 7200),
        }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:45s} {value:14,.2f}")
