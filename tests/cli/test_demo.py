"""``insightloop demo``: its data dir rules, and (slow) the whole demo end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from insightloop.cli.demo import DEMO_MARKER, DemoError, prepare_data_dir, write_keys
from insightloop.config import Config, SdkSource


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


@pytest.mark.slow
def test_demo_end_to_end(env: dict[str, str], config: Config) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "insightloop", "demo", "--duration", "3", "--rate", "100"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"http://127.0.0.1:{config.collector.port}" in out
    assert "demo-web-write-key" in out
    assert "What landed where" in out
    assert "late" in out
    assert "accepted → queryable" in out
    assert (Path(config.data_dir) / DEMO_MARKER).is_file()
