"""Schema evolution from the envelopes' columns, quarantine of what cannot be applied, and
exactly-once across tables when a crash falls between two tables' commits."""

from __future__ import annotations

from pathlib import Path

import pytest
from cdc_lake_kit import (
    Source,
    config_for,
    drain,
    expected_rows,
    history,
    live_rows,
    processor,
    record,
    table_rows,
)
from pyiceberg.catalog import Catalog
from pyiceberg.types import DecimalType, IntegerType, LongType, StringType

from insightloop.cdc.changes import CapturedChange
from insightloop.config import load_config
from insightloop.log.memory import MemoryLog
from insightloop.processor.cdc.runner import MAX_BATCH_SECONDS, build_cdc_processor
from insightloop.processor.cdc.stage import CdcStage


def plans_source() -> Source:
    source = Source()
    source.table("public.plans", [("id", "integer", True), ("seats", "integer"), ("price", "numeric(8,2)")])
    source.table("public.flags", [("id", "integer", True), ("name", "text")])
    return source


def field_type(catalog: Catalog, identifier: str, name: str) -> object:
    return catalog.load_table(identifier).schema().find_field(name).field_type


def test_add_column_and_widening_evolve_in_place(tmp_path: Path, catalog: Catalog) -> None:
    source, log = plans_source(), MemoryLog()
    proc = processor(config_for(tmp_path), log, catalog)
    source.insert("public.plans", {"id": 1, "seats": 5, "price": "9.99"})
    log.append("shard-0", [record(source.take())])
    drain(proc)
    source.alter("public.plans", "tier", "text")  # ADD COLUMN
    source.insert("public.plans", {"id": 2, "seats": 6, "price": "19.99", "tier": "pro"})
    source.alter("public.plans", "seats", "bigint")  # int → bigint
    source.alter("public.plans", "price", "numeric(12,2)")  # decimal widening
    source.insert("public.plans", {"id": 3, "seats": 2**40, "price": "1234567.50", "tier": "max"})
    changes = source.take()
    log.append("shard-0", [record(changes[:1]), record(changes[1:])])
    drain(proc)
    for identifier in ("cleaned.app_plans", "cleaned.app_plans_changes"):
        assert field_type(catalog, identifier, "seats") == LongType()
        assert field_type(catalog, identifier, "price") == DecimalType(12, 2)
        assert field_type(catalog, identifier, "tier") == StringType()
    names = ["id", "seats", "price", "tier"]
    assert live_rows(catalog, "cleaned.app_plans", names) == expected_rows(source.tables["public.plans"])
    rows = {r["id"]: r for r in live_rows(catalog, "cleaned.app_plans", names)}
    assert rows[1]["tier"] is None  # the old row reads the new column as null


def test_incompatible_type_change_goes_to_quarantine_and_the_pipeline_goes_on(
    tmp_path: Path, catalog: Catalog
) -> None:
    source, log = plans_source(), MemoryLog()
    proc = processor(config_for(tmp_path), log, catalog)
    source.insert("public.plans", {"id": 1, "seats": 5, "price": "9.99"})
    log.append("shard-0", [record(source.take())])
    drain(proc)
    source.alter("public.plans", "seats", "text")  # integer → text: no Iceberg promotion
    source.update("public.plans", (1,), {"seats": "five", "price": "10.00"})
    source.insert("public.flags", {"id": 1, "name": "beta"})
    log.append("shard-0", [record(source.take())])
    drain(proc)
    assert field_type(catalog, "cleaned.app_plans", "seats") == IntegerType()
    (row,) = live_rows(catalog, "cleaned.app_plans", ["id", "seats", "price"])
    assert row == {"id": 1, "seats": 5, "price": "10.00"}  # the rest of the change applied
    (bad,) = table_rows(catalog, "quarantine.cdc_changes")
    assert (bad["kind"], bad["table_name"], bad["column_name"], bad["op"]) == (
        "type_conflict",
        "public.plans",
        "seats",
        "u",
    )
    assert "text" in bad["reason"] and "int" in bad["reason"]
    assert live_rows(catalog, "cleaned.app_flags", ["id", "name"]) == [{"id": 1, "name": "beta"}]


def test_bad_payload_is_quarantined_and_its_neighbours_land(tmp_path: Path, catalog: Catalog) -> None:
    source, log = plans_source(), MemoryLog()
    first = source.insert("public.flags", {"id": 1, "name": "a"})
    source.insert("public.flags", {"id": 2, "name": "b"})
    good = source.take()
    broken = CapturedChange(
        "bad-1", "public.flags", "c", 9_999_999, first.commit_ts_us, b'{"op": "c", not json'
    )
    log.append("shard-0", [record([good[0], broken, good[1]]), b"\x00not a batch at all"])
    drain(processor(config_for(tmp_path), log, catalog))
    assert live_rows(catalog, "cleaned.app_flags", ["id", "name"]) == [
        {"id": 1, "name": "a"},
        {"id": 2, "name": "b"},
    ]
    raw = {r["event_id"]: r for r in table_rows(catalog, "raw.cdc_changes")}
    assert raw["bad-1"]["stream"] == "rejected" and raw["bad-1"]["payload"] == broken.payload
    assert len(raw) == 4
    quarantined = sorted(r["event_id"] for r in table_rows(catalog, "quarantine.cdc_changes"))
    assert len(quarantined) == 2 and "bad-1" in quarantined


class Crash(Exception):
    pass


def test_a_crash_between_two_tables_commits_then_a_restart_completes_exactly_once(
    tmp_path: Path, catalog: Catalog
) -> None:
    source, log = plans_source(), MemoryLog()
    config = config_for(tmp_path)
    for i in range(1, 30):
        source.insert("public.plans", {"id": i, "seats": i, "price": "1.00"})
        source.insert("public.flags", {"id": i, "name": f"f{i}"})
    log.append("shard-0", [record(source.take())])
    proc = processor(config, log, catalog)
    drain(proc)
    for i in range(1, 30, 2):
        source.update("public.plans", (i,), {"seats": i * 100})
        source.update("public.flags", (i,), {"name": f"g{i}"})
        if i % 3 == 0:
            source.delete("public.flags", (i + 1,))
    log.append("shard-0", [record(source.take())])
    stage = proc.stage
    assert isinstance(stage, CdcStage)

    def crash_after_first(table: str) -> None:
        raise Crash(table)

    stage.after_table = crash_after_first
    with pytest.raises(Crash):
        proc.step()
    # a new process: fresh stage and processor over the same lake and log
    drain(processor(config, log, catalog))
    for name, identifier in (("public.plans", "app_plans"), ("public.flags", "app_flags")):
        table = source.tables[name]
        names = [c.name for c in table.columns]
        assert live_rows(catalog, f"cleaned.{identifier}", names) == expected_rows(table)
        ids = [r["event_id"] for r in history(catalog, f"cleaned.{identifier}_changes")]
        assert len(ids) == len(set(ids))
    raw = table_rows(catalog, "raw.cdc_changes")
    total = sum(len(history(catalog, f"cleaned.{t}_changes")) for t in ("app_plans", "app_flags"))
    assert total == len(raw)


def test_cdc_micro_batches_close_within_the_cdc_window(tmp_path: Path, catalog: Catalog) -> None:
    """The CDC processor waits at most ``MAX_BATCH_SECONDS`` to fill a batch (a shorter
    ``processor.max_batch_seconds`` still wins): stage 2's own time batches changes under
    load, and a longer wait only adds replication lag."""
    for configured, expected in ((1.0, MAX_BATCH_SECONDS), (0.05, 0.05)):
        config = load_config(
            environ={
                "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
                "INSIGHTLOOP__PROCESSOR__MAX_BATCH_SECONDS": str(configured),
            }
        )
        proc = build_cdc_processor(config, MemoryLog(), catalog)
        assert proc.limits.max_seconds == expected
        assert proc.limits.max_events == config.processor.max_batch_events
