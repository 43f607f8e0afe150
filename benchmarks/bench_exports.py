"""Batch exports: loading a multi-GB CSV export into raw + cleaned (+ quarantine), next to
DuckDB's own CSV → Parquet conversion of the same file in the same run (the practical limit
of this machine for reading a CSV and writing Parquet), each in its own process, with its
peak memory (RSS).

- ``duckdb_csv_to_parquet_*``: ``COPY (SELECT * FROM read_csv(file)) TO … (FORMAT parquet)``,
  2 threads (this machine's cores);
- ``duckdb_same_work_*``: DuckDB alone doing the work a load cannot skip, as two ``COPY``
  statements: the CSV into raw-like Parquet (each row as JSON, its typed values, its checks,
  the e-mail hashed), then that into the cleaned rows (good rows, one per key, latest wins).
  No hashing of the file, no row numbers, no Iceberg: the floor of this design here;
- ``load_*``: ``insightloop load FILE`` (hash, read, one raw commit, stage 2 into quarantine
  and ``cleaned.crm_contacts``), wall time of the process, and its CPU time;
- ``machines_for_200gb_in_2h``: how many such machines load 200 GB within the 2-hour target;
- ``day2_*``: a next day's file a tenth the size (its keys among the first's) loaded onto the
  table the first load made, against the same file loaded into an empty lake: each load
  rewrites the entity's cleaned table whole, so what the table already holds costs every load;
- ``parts_*``: a day of the same size in ``PARTS`` parts, as a folder given to ``insightloop
  load``, onto that table: merged into cleaned together (the default) and one by one
  (``exports.merge_after_mb = 0``).

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
#: The parts of a day's export in the ``parts_*`` figures.
PARTS = 4
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


DUCKDB_SAME_WORK = """
import sys, duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET enable_progress_bar = false")
con.execute("SET preserve_insertion_order = false")
source, raw, cleaned = sys.argv[1], sys.argv[2], sys.argv[3]
header = ["contact_id", "email", "first_name", "last_name", "company_id", "lifecycle_stage",
          "employees", "annual_revenue", "opted_in", "created_at", "updated_at"]
types = {"employees": "BIGINT", "annual_revenue": "DOUBLE", "opted_in": "BOOLEAN",
         "created_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ"}
text = ", ".join(f"'{h}': 'VARCHAR'" for h in header)
typed = ", ".join(
    f"TRY_CAST(NULLIF(trim({h}), '') AS {types[h]}) AS t_{h}" if h in types else f"{h} AS t_{h}"
    for h in header
)
checks = " ".join(
    f"WHEN t_{h} IS NULL AND NULLIF(trim({h}), '') IS NOT NULL THEN '{h}'" for h in header if h in types
)
payload = ", ".join(f"'{h}': {h}" for h in header)
con.execute(f\"\"\"COPY (
    SELECT to_json({{{payload}}})::VARCHAR AS payload, sha256(lower(NULLIF(trim(email), ''))) AS email_sha256,
           CASE WHEN NULLIF(trim(contact_id), '') IS NULL THEN 'contact_id' {checks} END AS failed,
           {", ".join("t_" + h for h in header)}
    FROM (SELECT *, {typed}
          FROM read_csv('{source}', header = true, auto_detect = false, columns = {{{text}}}))
) TO '{raw}' (FORMAT parquet, COMPRESSION zstd)\"\"\")
# One row per key: rank narrow rows, drop the losers from the wide ones (faster here than
# ranking the wide rows, as in the loader's merge).
con.execute(f\"\"\"COPY (
    WITH u AS NOT MATERIALIZED (
        SELECT * EXCLUDE (payload, email_sha256, failed)
        FROM read_parquet('{raw}', file_row_number = true) WHERE failed IS NULL),
    losers AS (SELECT file_row_number FROM u
        QUALIFY row_number() OVER (PARTITION BY t_contact_id ORDER BY t_updated_at DESC NULLS LAST) > 1)
    SELECT * EXCLUDE (file_row_number) FROM u ANTI JOIN losers USING (file_row_number)
) TO '{cleaned}' (FORMAT parquet, COMPRESSION zstd)\"\"\")
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

        outputs = [str(root / "raw.parquet"), str(root / "cleaned.parquet")]
        same_s, same_rss, _ = _child([sys.executable, "-c", DUCKDB_SAME_WORK, str(path), *outputs], env)
        for output in outputs:
            Path(output).unlink()
        same_mbps = size / MB / same_s
        print(f"duckdb alone, same work: {same_mbps:,.1f} MB/s, peak {same_rss:,.0f} MiB", flush=True)

        cpu_before = _children_cpu()
        load_s, load_rss, _ = _child([sys.executable, "-m", "insightloop", "load", str(path)], env)
        load_cpu = _children_cpu() - cpu_before
        status = json.loads((root / "data" / "exports" / "status.json").read_text())
        (loaded,) = status.values()
        assert loaded["status"] == "loaded", loaded
        print(f"insightloop load: {size / MB / load_s:,.1f} MB/s, peak {load_rss:,.0f} MiB", flush=True)
        load_mbps = size / MB / load_s

        day2 = path.with_name("contacts_2026-11-26.csv")
        size2 = big_csv(day2, rows // 10, bad_every=100_000, day="2026-11-26")
        onto_s, _, _ = _child([sys.executable, "-m", "insightloop", "load", str(day2)], env)
        empty_env = {**env, "INSIGHTLOOP_DATA_DIR": str(root / "data-empty")}
        empty_s, _, _ = _child([sys.executable, "-m", "insightloop", "load", str(day2)], empty_env)
        print(
            f"next day ({size2 / MB:,.0f} MB): {onto_s:,.1f} s onto the first day's table, "
            f"{empty_s:,.1f} s into an empty lake",
            flush=True,
        )
        keys = rows * 9 // 10  # the first day's
        together_s = _parts(root, "2026-11-27", rows // 40, keys, env)
        one_by_one = {**env, "INSIGHTLOOP__EXPORTS__MERGE_AFTER_MB": "0"}
        each_s = _parts(root, "2026-11-28", rows // 40, keys, one_by_one)
        print(
            f"a day in {PARTS} parts onto that table: {together_s:,.1f} s merged together, "
            f"{each_s:,.1f} s merged one by one",
            flush=True,
        )
        return {
            "file_mb": size / MB,
            "file_rows": float(rows),
            "duckdb_csv_to_parquet_mb_per_s": size / MB / duck_s,
            "duckdb_csv_to_parquet_peak_rss_mib": duck_rss,
            "load_mb_per_s": load_mbps,
            "load_rows_per_s": rows / load_s,
            "load_peak_rss_mib": load_rss,
            "load_vs_duckdb": duck_s / load_s,
            "duckdb_same_work_mb_per_s": size / MB / same_s,
            "load_vs_duckdb_same_work": same_s / load_s,
            "load_cpu_s": load_cpu,
            "load_cpu_s_per_gb": load_cpu / (size / 1e9),
            "load_bad_rows": float(loaded["bad_rows"]),
            "machines_for_200gb_in_2h": 200_000 / (load_mbps * 7200),
            "day2_file_mb": size2 / MB,
            "day2_onto_first_day_s": onto_s,
            "day2_into_empty_lake_s": empty_s,
            "day2_onto_vs_empty": onto_s / empty_s,
            "parts_merged_together_s": together_s,
            "parts_merged_one_by_one_s": each_s,
            "parts_together_vs_one_by_one": each_s / together_s,
        }


def _parts(root: Path, day: str, rows: int, keys: int, env: dict[str, str]) -> float:
    """Seconds of ``insightloop load`` of a folder holding a day in ``PARTS`` parts of
    ``rows`` rows each (other rows, keys among the first day's)."""
    folder = root / f"parts-{day}"
    folder.mkdir()
    for part in range(PARTS):
        name = f"contacts_{day}_part-{part + 1:03d}.csv"
        big_csv(folder / name, rows, bad_every=100_000, day=day, start=part * rows, keys=keys)
    command = [
        sys.executable,
        "-m",
        "insightloop",
        "load",
        str(folder),
        "--source",
        "bench",
        "--entity",
        "contacts",
    ]
    seconds, _, _ = _child(command, env)
    return seconds


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:45s} {value:14,.2f}")
