from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog

from insightloop.lake.catalog import NAMESPACES


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    lake = tmp_path / "lake"
    lake.mkdir()
    cat = SqlCatalog("test", uri=f"sqlite:///{lake / 'catalog.db'}", warehouse=f"file://{lake / 'warehouse'}")
    for namespace in NAMESPACES:
        cat.create_namespace(namespace)
    return cat
