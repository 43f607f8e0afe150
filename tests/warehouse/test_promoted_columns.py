"""``insightloop query`` reads a column promoted in place (int → long) from every file: the
files written as int and those written as long."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from typer.testing import CliRunner

from insightloop.cli.main import app
from insightloop.config import Config
from insightloop.processor.cleaned.coltypes import ARROW_TYPES, Kind
from insightloop.processor.cleaned.commits import Tables
from insightloop.processor.cleaned.reconcile import Column
from insightloop.processor.cleaned.tables import STRING, TableSpec

ORDERS = TableSpec("cleaned.orders", (("id", STRING, "order id"),), partition_by=None)
BIG = 2**40


def batch(ids: list[str], quantities: list[int], kind: Kind) -> tuple[pa.Table, Column]:
    values = pa.array(quantities, ARROW_TYPES[kind])
    data = pa.table({"id": pa.array(ids, pa.string()), "quantity": values})
    return data, Column("quantity", kind, values, "properties.quantity")


def test_query_reads_a_promoted_column(
    catalog: Catalog, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = Tables(catalog)
    data, column = batch(["o1", "o2"], [3, -7], Kind.INT)
    tables.write(ORDERS, data, [column], seq=1)
    data, column = batch(["o3"], [BIG], Kind.LONG)
    tables.write(ORDERS, data, [column], seq=2)  # promotes int → long, with the rows

    monkeypatch.delenv("INSIGHTLOOP_CONFIG", raising=False)
    monkeypatch.setenv("INSIGHTLOOP_DATA_DIR", str(tmp_path / "data"))
    sql = "SELECT id, quantity, typeof(quantity) AS type FROM cleaned.orders ORDER BY id"
    result = CliRunner().invoke(app, ["query", sql, "--format", "json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"id": "o1", "quantity": 3, "type": "BIGINT"},
        {"id": "o2", "quantity": -7, "type": "BIGINT"},
        {"id": "o3", "quantity": BIG, "type": "BIGINT"},
    ]
