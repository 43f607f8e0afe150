from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog

from insightloop.config import load_config
from insightloop.lake.catalog import open_catalog


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(load_config(environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path / "data")}))
