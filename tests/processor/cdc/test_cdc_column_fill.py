"""A column added with a stored default (``ColumnFill``): rows older than it take the value
in current state, exactly once; later explicit values (an explicit NULL too) win; replays
change nothing; no history rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdc_lake_kit import (  # type: ignore[import-not-found]
    Source,
    config_for,
    drain,
    expected_rows,
    history,
    live_rows,
    processor,
    record,
)
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog

from insightloop.lake.catalog import NAMESPACES
from insightloop.log.memory import MemoryLog
from insightloop.processor.cdc.naming import history_identifier, state_identifier

ACCOUNTS = "public.accounts"
COLUMNS = ["id", "name", "tier", "vip"]


def _source() -> Source:
    source = Source()
    source.table(ACCOUNTS, [("id", "integer", True), ("name", "text")])
    return source


def _state(catalog: Catalog, columns: list[str] = COLUMNS) -> list[dict[str, object]]:
    return live_rows(catalog, state_identifier(ACCOUNTS), columns)


def _all_rows(catalog: Catalog) -> list[dict[str, Any]]:
    rows = catalog.load_table(state_identifier(ACCOUNTS)).scan().to_arrow().to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def test_fill_applies_once_to_older_rows_and_later_values_win(tmp_path: Path, catalog: Catalog) -> None:
    source, log = _source(), MemoryLog()
    for i in (1, 2, 3):
        source.insert(ACCOUNTS, {"id": i, "name": f"a{i}"})
    source.delete(ACCOUNTS, (3,))
    first = record(source.take())
    source.add_column_with_default(ACCOUNTS, "tier", "text", "gold")
    source.add_column_with_default(ACCOUNTS, "vip", "boolean", True)
    source.insert(ACCOUNTS, {"id": 4, "name": "a4", "tier": "silver", "vip": False})  # at the fill's LSN
    source.update(ACCOUNTS, (2,), {"tier": None})  # an explicit NULL after the fill
    fills = source.take_fills()
    assert [f.lsn for f in fills] == [fills[0].lsn] * 2
    second = record(source.take(), fills=fills)
    log.append("shard-0", [first, second])
    proc = processor(config_for(tmp_path), log, catalog)
    drain(proc)
    table = source.tables[ACCOUNTS]
    assert _state(catalog) == expected_rows(table)
    assert {r["id"]: r["tier"] for r in _state(catalog)} == {1: "gold", 2: None, 4: "silver"}
    rows = _all_rows(catalog)
    tombstone = next(r for r in rows if r["id"] == 3)
    assert tombstone["_deleted"] and tombstone["tier"] is None  # deleted before: not filled
    filled = next(r for r in rows if r["id"] == 1)
    assert filled["_lsn"] < fills[0].lsn  # a fill is no change of the row
    # History: the four inserts, the delete and the update; none for the fill.
    changes = history(catalog, history_identifier(ACCOUNTS))
    assert sorted(r["_op"] for r in changes) == ["c", "c", "c", "c", "d", "u"]
    assert next(r for r in changes if r["id"] == 1)["tier"] is None

    # The reader redelivers everything, the fill included: nothing changes.
    state_before = _all_rows(catalog)
    log.append("shard-0", [first, second])
    drain(proc)
    assert _all_rows(catalog) == state_before
    assert len(history(catalog, history_identifier(ACCOUNTS))) == len(changes)


def test_fill_in_its_own_batch_after_a_later_explicit_null(tmp_path: Path, catalog: Catalog) -> None:
    """Replay safety across batches: the fill redelivered after the explicit NULL was applied
    (and a fresh processor re-applying raw from the start) leaves the NULL alone."""
    source, log = _source(), MemoryLog()
    source.insert(ACCOUNTS, {"id": 1, "name": "a1"})
    source.insert(ACCOUNTS, {"id": 2, "name": "a2"})
    records = [record(source.take())]
    source.add_column_with_default(ACCOUNTS, "tier", "text", "gold")
    source.update(ACCOUNTS, (1,), {"name": "b1"})  # the first change with the column
    fills = source.take_fills()
    records.append(record(source.take(), fills=fills))
    log.append("shard-0", records)
    proc = processor(config_for(tmp_path), log, catalog, max_events=1)
    drain(proc)
    source.update(ACCOUNTS, (2,), {"tier": None})
    later = record(source.take())
    records += [later, record([], fills=fills), later]
    log.append("shard-0", records[2:])
    drain(proc)
    table = source.tables[ACCOUNTS]
    assert _state(catalog, COLUMNS[:3]) == expected_rows(table)
    assert {r["id"]: r["tier"] for r in _state(catalog, COLUMNS[:3])} == {1: "gold", 2: None}
    # A fresh processor over a fresh lake, everything in one go, gives the same rows.
    other = tmp_path / "other"
    other.mkdir()
    lake = SqlCatalog("t2", uri=f"sqlite:///{other / 'c.db'}", warehouse=f"file://{other}")
    for namespace in NAMESPACES:
        lake.create_namespace(namespace)
    again = MemoryLog()
    again.append("shard-0", records)
    drain(processor(config_for(other), again, lake))
    assert _state(lake, COLUMNS[:3]) == expected_rows(table)
