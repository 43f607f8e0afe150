"""Edges of a load: a stop request mid-file commits nothing and leaves the file to load again;
a header-only file loads as zero rows; the loader's metrics count files, rows and bytes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from exports_kit import Lake, counts, csv_text, files, landing_file, make_config, row
from prometheus_client import CollectorRegistry

from insightloop.exports.loader import LoadInterrupted
from insightloop.exports.metrics import ExportMetrics
from insightloop.exports.service import stopping
from insightloop.exports.status import files_status


def test_a_stop_mid_file_commits_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path, batch_rows=1000)
    lake = Lake(config)
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(row(i) for i in range(5000)))
    stop = threading.Event()
    check = stopping(stop)
    seen = 0

    def progress(rows: int, fraction: float) -> None:
        nonlocal seen
        seen += rows
        if seen >= 2000:
            stop.set()
        check(rows, fraction)

    (file,) = files(path)
    with pytest.raises(LoadInterrupted):
        lake.loader.load(file, progress)
    assert lake.counts() == counts(0, 0, 0, 0)
    assert [(s.status, s.reason) for s in files_status(config)] == [("discovered", "interrupted")]
    assert not list((tmp_path / "data" / "lake" / "warehouse").rglob("*.parquet"))
    assert lake.load(path).status == "loaded"
    assert lake.counts() == counts(5000, 0, 5000, 0)


def test_a_header_only_file_loads_no_rows(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    lake.load(landing_file(tmp_path, "contacts_2026-11-24.csv", csv_text([row(1)])))
    outcome = lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([])))
    assert (outcome.status, outcome.rows) == ("loaded", 0)
    assert lake.counts() == counts(1, 0, 1, 0)


def test_metrics(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    metrics = ExportMetrics(CollectorRegistry())
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text([row(1), row(2)]))
    for outcome in (lake.load(path), lake.load(path)):
        metrics.observe(outcome)
    value = metrics.registry.get_sample_value
    assert value("insightloop_export_files_total", {"status": "loaded"}) == 1
    assert value("insightloop_export_files_total", {"status": "unchanged"}) == 1
    assert value("insightloop_export_rows_loaded_total", {"entity": "contacts"}) == 2
    assert value("insightloop_export_bytes_loaded_total", {"entity": "contacts"}) == path.stat().st_size
    assert value("insightloop_export_load_seconds_count") == 1
