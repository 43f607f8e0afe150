"""Fixtures for end-to-end tests: the real collector and processor as child processes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.exceptions import NoSuchTableError

from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.testing import Services

WRITE_KEY = "demo-web-write-key"


NO_CONTRACTS = {"INSIGHTLOOP__CONTRACTS__MODE": "off"}


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    # These tests send events of any shape: the repository's contracts are off.
    svc = Services(tmp_path / "data", extra_env=NO_CONTRACTS)
    try:
        yield svc
    finally:
        svc.stop_all()


@pytest.fixture
def config(services: Services) -> Config:
    return load_config(environ={"INSIGHTLOOP_DATA_DIR": str(services.data_dir), **NO_CONTRACTS})


def read_table(config: Config, identifier: str) -> pa.Table | None:
    """The table's current rows, or None while it does not exist yet."""
    try:
        return open_catalog(config).load_table(identifier).scan().to_arrow()
    except NoSuchTableError:
        return None


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)
