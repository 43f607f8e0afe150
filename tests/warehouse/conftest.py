from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog

from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def catalog(config: Config) -> Catalog:
    return open_catalog(config)
