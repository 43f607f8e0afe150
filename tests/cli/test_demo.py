"""``insightloop demo``: its data dir rules, and (slow) the whole demo end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import msgspec
import pytest

from insightloop.cdc.appdb.schema import TABLES
from insightloop.cli import services
from insightloop.cli.demo import DEMO_MARKER, DemoError, prepare_data_dir, write_keys
from insightloop.cli.demo_cdc import CdcSide
from insightloop.cli.services import CDC_SERVICES, pipeline_services
from insightloop.config import Config, SdkSource
from insightloop.errors import TerminalError


def test_a_fresh_data_dir_is_created_and_marked(config: Config) -> None:
    path = prepare_data_dir(config)
    assert path == Path(config.data_dir)
    assert (path / DEMO_MARKER).is_file()


def test_an_earlier_demo_is_cleared(config: Config) -> None:
    path = prepare_data_dir(config)
    (path / "lake").mkdir()
    prepare_data_dir(config)
    assert sorted(p.name for p in path.iterdir()) == [DEMO_MARKER]


def test_data_the_demo_did_not_create_is_never_cleared(config: Config) -> None:
    path = Path(config.data_dir)
    (path / "lake").mkdir(parents=True)
    with pytest.raises(DemoError, match="did not create"):
        prepare_data_dir(config)
    assert (path / "lake").is_dir()


def test_web_and_mobile_traffic_use_different_sources(config: Config) -> None:
    assert write_keys(config) == ("web", "demo-web-write-key", "backend", "demo-backend-write-key")


def test_one_source_serves_both(config: Config) -> None:
    only_ios = msgspec.structs.replace(config.collector, sources={"ios": SdkSource(write_keys=["k-ios"])})
    assert write_keys(msgspec.structs.replace(config, collector=only_ios)) == ("ios", "k-ios", "ios", "k-ios")


def test_without_cdc_the_demo_runs_the_segment_pipeline_and_says_so(config: Config) -> None:
    off = msgspec.structs.replace(config, cdc=msgspec.structs.replace(config.cdc, enabled=False))
    side = CdcSide(off, 200.0, 7)
    with ExitStack() as stack:
        side.start_source(stack)
    assert not side.enabled
    assert not set(CDC_SERVICES) & set(pipeline_services(side.services_config()))
    assert "cdc.enabled = false" in (side.outcome().off or "")


def test_a_database_that_cannot_start_leaves_the_segment_demo_running(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextmanager
    def broken(config: Config) -> Iterator[str | None]:
        raise TerminalError("initdb failed (1): no space left on device")
        yield None

    monkeypatch.setattr(services, "demo_sources", broken)
    side = CdcSide(config, 200.0, 7)
    with ExitStack() as stack:
        side.start_source(stack)
    assert not side.enabled
    assert "could not start" in (side.off or "")
    assert "no space left on device" in (side.off or "")
    assert not set(CDC_SERVICES) & set(pipeline_services(side.services_config()))
    assert "collector" in pipeline_services(side.services_config())


def cdc_rows(out: str) -> dict[str, tuple[int, int, str]]:
    """The summary's CDC table: source table → (source rows, live rows, ✓ or ✗)."""
    found: dict[str, tuple[int, int, str]] = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 7 and cells[0].startswith("public."):
            found[cells[0]] = (int(cells[1].replace(",", "")), int(cells[3].replace(",", "")), cells[6])
    return found


def export_files(out: str) -> dict[str, tuple[str, str]]:
    """The summary's export files table: file → (status, ✓ or ✗)."""
    found: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 7 and cells[0].startswith("contacts_"):
            found[cells[0]] = (cells[2], cells[6])
    return found


@pytest.mark.slow
def test_demo_end_to_end(env: dict[str, str], config: Config) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "insightloop",
            "demo",
            "--duration",
            "5",
            "--rate",
            "100",
            "--cdc-rate",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "220"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"http://127.0.0.1:{config.collector.port}" in out
    assert "demo-web-write-key" in out
    assert "What landed where" in out
    assert "late" in out
    assert "accepted → queryable" in out
    assert (Path(config.data_dir) / DEMO_MARKER).is_file()
    # CDC: every app table holds as many live rows as its source table, after the schema change.
    rows = cdc_rows(out)
    assert sorted(rows) == sorted(f"public.{t}" for t in TABLES), out
    for table, (source, live, check) in rows.items():
        assert source == live and check == "✓", f"{table}: {source} source rows, {live} live rows"
    assert sum(source for source, _, _ in rows.values()) > len(rows), "the workload changed the database"
    assert "the lake reached the source's last LSN ✓" in out
    assert f"live rows = source rows in all {len(TABLES)} tables ✓" in out
    assert "cleaned.app_accounts.industry is string ✓" in out
    assert "cleaned.app_invoices.amount_cents is long ✓" in out
    assert re.search(r"captured\s+[\d,]+ changes in raw.cdc_changes", out)
    # Batch exports: three days loaded, the re-sent file a no-op, a corrected day replacing its
    # first version, the tables' counts as the files say.
    files = export_files(out)
    assert files == {
        "contacts_2026-11-23.csv": ("loaded", "✓"),
        "contacts_2026-11-24.csv": ("loaded", "✓"),
        "contacts_2026-11-25.csv.gz": ("loaded", "✓"),
        "contacts_2026-11-23_resent.csv": ("unchanged (already loaded as raw sequence 1)", "✓"),
        "contacts_2026-11-24.csv (corrected)": ("loaded, replacing the earlier version", "✓"),
    }, out
    assert "every dropped file has a final status ✓" in out
    assert re.search(r"raw\.export_rows\s+[\d,]+ rows = rows of the 4 loaded file\(s\) \([\d,]+\) ✓", out)
    assert re.search(
        r"quarantine\.export_rows\s+[\d,]+ rows = bad rows of each period's latest file \([\d,]+\) ✓", out
    )
    assert re.search(
        r"cleaned\.crm_contacts\s+[\d,]+ rows = distinct keys of the good rows of each period's latest file "
        r"\([\d,]+\) ✓",
        out,
    )


@pytest.mark.slow
def test_demo_without_cdc_and_exports(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "insightloop", "demo", "--duration", "2", "--rate", "50"],
        capture_output=True,
        text=True,
        timeout=240,
        env={
            **os.environ,
            "COLUMNS": "200",
            "INSIGHTLOOP__CDC__ENABLED": "false",
            "INSIGHTLOOP__EXPORTS__ENABLED": "false",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Change data capture: off (cdc.enabled = false)" in result.stdout
    assert "What landed where" in result.stdout
    assert not Path(env["INSIGHTLOOP_DATA_DIR"], "appdb").exists()
    assert "Batch exports: off (exports.enabled = false)" in result.stdout
    assert not Path(env["INSIGHTLOOP_DATA_DIR"], "landing").exists()
