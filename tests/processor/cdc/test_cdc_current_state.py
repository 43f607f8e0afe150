"""Stage 1 + 2 over synthetic CDC batches: the current-state tables equal a model of the
source row for row, history has one row per change, TOAST and snapshots behave."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
from cdc_lake_kit import (
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

from insightloop.log.memory import MemoryLog
from insightloop.processor.cdc.naming import history_identifier, state_identifier


def saas_source() -> Source:
    source = Source()
    source.table(
        "public.accounts",
        [("id", "integer", True), ("name", "text"), ("mrr", "numeric(12,2)"), ("active", "boolean"),
         ("updated_at", "timestamp with time zone"), ("notes", "text")],
    )  # fmt: skip
    source.table(
        "public.users",
        [("id", "bigint", True), ("account_id", "integer"), ("email", "text"), ("settings", "jsonb")],
    )
    source.table(
        "public.memberships", [("account_id", "integer", True), ("user_id", "bigint", True), ("role", "text")]
    )
    return source


def workload(source: Source, rng: random.Random, steps: int) -> None:
    """Random inserts, updates (some with an unchanged TOAST column), deletes, a truncate."""
    next_id = {"public.accounts": 1, "public.users": 1}
    for step in range(steps):
        roll = rng.random()
        name = rng.choice(["public.accounts", "public.users", "public.memberships"])
        table = source.tables[name]
        if name == "public.memberships":
            if roll < 0.6 or not table.rows:
                key = (rng.randint(1, 20), rng.randint(1, 20))
                if key in table.rows:
                    source.update(name, key, {"role": rng.choice(["admin", "member", "viewer"])})
                else:
                    source.insert(name, {"account_id": key[0], "user_id": key[1], "role": "member"})
            elif roll < 0.95:
                source.delete(name, rng.choice(sorted(table.rows)))
            elif step > steps // 2:
                source.truncate(name)
            continue
        if roll < 0.4 or len(table.rows) < 3:
            ident = next_id[name]
            next_id[name] += 1
            if name == "public.accounts":
                row = {"id": ident, "name": f"acme {ident}", "mrr": f"{ident * 10}.50", "active": True}
                source.insert(name, {**row, "updated_at": "2025-11-26T10:00:00+00:00", "notes": "x" * 50})
            else:
                source.insert(name, {"id": ident, "account_id": rng.randint(1, 9), "email": f"u{ident}@x.io",
                                     "settings": {"theme": "dark", "n": ident}})  # fmt: skip
        elif roll < 0.85:
            key = rng.choice(sorted(table.rows))
            if name == "public.accounts":
                toast = rng.random() < 0.5
                source.update(name, key, {"mrr": f"{rng.randint(1, 999)}.25", "active": rng.random() < 0.5},
                              unchanged=["notes"] if toast else ())  # fmt: skip
            else:
                source.update(name, key, {"email": f"new{rng.randint(1, 999)}@x.io"})
        else:
            source.delete(name, rng.choice(sorted(table.rows)))


def publish(source: Source, log: MemoryLog, rng: random.Random) -> None:
    pending = source.take()
    while pending:
        size = rng.randint(1, 12)
        log.append("shard-0", [record(pending[:size])])
        pending = pending[size:]


def assert_lake_equals_source(catalog: Catalog, source: Source) -> None:
    for table in source.tables.values():
        names = [c.name for c in table.columns]
        assert live_rows(catalog, state_identifier(table.name), names) == expected_rows(table), table.name


def test_random_workload_over_three_tables_equals_the_source(tmp_path: Path, catalog: Catalog) -> None:
    rng = random.Random(4)
    source, log = saas_source(), MemoryLog()
    proc = processor(config_for(tmp_path), log, catalog)
    for _ in range(3):
        workload(source, rng, 120)
        publish(source, log, rng)
        drain(proc)
        assert_lake_equals_source(catalog, source)
    # one history row per change, unique event ids
    for table in source.tables.values():
        rows = history(catalog, history_identifier(table.name))
        ids = [r["event_id"] for r in rows]
        assert len(ids) == len(set(ids))
    raw = catalog.load_table("raw.cdc_changes").scan().to_arrow()
    applied = sum(len(history(catalog, history_identifier(t))) for t in source.tables)
    assert applied == raw.num_rows


def test_unchanged_toast_column_keeps_the_earlier_value(tmp_path: Path, catalog: Catalog) -> None:
    source, log = saas_source(), MemoryLog()
    source.insert(
        "public.accounts", {"id": 1, "name": "a", "mrr": "1.00", "active": True, "notes": "long " * 400}
    )
    log.append("shard-0", [record(source.take())])
    source.update("public.accounts", (1,), {"name": "b"}, unchanged=["notes"])
    log.append("shard-0", [record(source.take())])
    proc = processor(config_for(tmp_path), log, catalog)
    drain(proc)
    (row,) = live_rows(catalog, "cleaned.app_accounts", ["id", "name", "notes"])
    assert row == {"id": 1, "name": "b", "notes": "long " * 400}
    changes = history(catalog, "cleaned.app_accounts_changes")
    assert [(r["_op"], r["name"], r["notes"]) for r in sorted(changes, key=lambda r: r["_lsn"])] == [
        ("c", "a", "long " * 400),
        ("u", "b", "long " * 400),
    ]


def test_json_columns_hold_json_text_even_for_a_bare_string(tmp_path: Path, catalog: Catalog) -> None:
    """A jsonb document that is a string (``'"plain"'``) arrives as the JSON value "plain":
    the lake column holds JSON text, so it must be ``"plain"`` with its quotes, like every
    other document of the column (and an array column likewise)."""
    source, log = saas_source(), MemoryLog()
    source.alter("public.users", "tags", "text[]")
    source.insert("public.users", {"id": 1, "settings": "plain", "tags": ["a,b", None]})
    source.insert("public.users", {"id": 2, "settings": {"theme": "dark"}, "tags": []})
    source.insert("public.users", {"id": 3, "settings": 42, "tags": None})
    log.append("shard-0", [record(source.take())])
    drain(processor(config_for(tmp_path), log, catalog))
    rows = live_rows(catalog, "cleaned.app_users", ["id", "settings", "tags"])
    assert rows == sorted(
        [
            {"id": 1, "settings": '"plain"', "tags": '["a,b",null]'},
            {"id": 2, "settings": '{"theme":"dark"}', "tags": "[]"},
            {"id": 3, "settings": "42", "tags": None},
        ],
        key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS),
    )


def test_a_repeated_snapshot_of_a_nan_value_adds_no_history(tmp_path: Path, catalog: Catalog) -> None:
    """A re-snapshot (a lost slot) reads the row unchanged: NaN is not equal to itself in
    Python, but it is the same value, so no second history row (with the same
    content-based event id) may appear."""
    source, log = Source(), MemoryLog()
    source.table("public.flags", [("id", "integer", True), ("rollout", "double precision")])
    source.insert("public.flags", {"id": 1, "rollout": "NaN"})
    source.insert("public.flags", {"id": 2, "rollout": 0.5})
    log.append("shard-0", [record(source.take())])
    for _ in range(2):
        snap, done = source.snapshot("public.flags")
        log.append("shard-0", [record(snap, [done])])
    drain(processor(config_for(tmp_path), log, catalog))
    ids = [r["event_id"] for r in history(catalog, "cleaned.app_flags_changes")]
    assert len(ids) == len(set(ids)) == 2  # the inserts: the reads repeat the rows


def test_redelivered_batches_and_a_repeated_snapshot_change_nothing(tmp_path: Path, catalog: Catalog) -> None:
    rng = random.Random(9)
    source, log = saas_source(), MemoryLog()
    proc = processor(config_for(tmp_path), log, catalog)
    snap, done = source.snapshot("public.users")  # empty table: a snapshot of nothing
    workload(source, rng, 150)
    records = []
    pending = source.take()
    while pending:
        records.append(record(pending[:7]))
        pending = pending[7:]
    log.append("shard-0", records)
    drain(proc)
    snap, done = source.snapshot("public.accounts")
    log.append("shard-0", [record(snap, [done])])
    drain(proc)
    before = {t: history(catalog, history_identifier(t)) for t in source.tables}
    state_before = {t: live_rows(catalog, state_identifier(t), ["id"]) for t in source.tables}
    # the reader redelivers everything, and the snapshot (same consistent point) once more
    log.append("shard-0", records)
    log.append("shard-0", [record(snap, [done])])
    drain(proc)
    # a re-snapshot at a new consistent point, nothing changed meanwhile
    snap2, done2 = source.snapshot("public.accounts")
    log.append("shard-0", [record(snap2, [done2])])
    drain(proc)
    for t in source.tables:
        assert len(history(catalog, history_identifier(t))) == len(before[t]), t
        assert live_rows(catalog, state_identifier(t), ["id"]) == state_before[t]
    assert_lake_equals_source(catalog, source)


def test_snapshot_done_deletes_rows_that_vanished(tmp_path: Path, catalog: Catalog) -> None:
    source, log = saas_source(), MemoryLog()
    proc = processor(config_for(tmp_path), log, catalog)
    for i in range(1, 6):
        source.insert("public.users", {"id": i, "account_id": 1, "email": f"{i}@x", "settings": None})
    log.append("shard-0", [record(source.take())])
    drain(proc)
    # rows 2 and 4 are deleted while the slot is missing: no change is ever sent for them
    del source.tables["public.users"].rows[(2,)]
    del source.tables["public.users"].rows[(4,)]
    snap, done = source.snapshot("public.users")
    log.append("shard-0", [record(snap[:2]), record(snap[2:], [done])])
    drain(proc)
    assert_lake_equals_source(catalog, source)
    vanished = [
        r for r in history(catalog, "cleaned.app_users_changes") if r["event_id"].startswith("vanished:")
    ]
    assert sorted(r["id"] for r in vanished) == [2, 4]
    assert {r["_op"] for r in vanished} == {"d"}


def test_primary_key_update_moves_the_row(tmp_path: Path, catalog: Catalog) -> None:
    source, log = saas_source(), MemoryLog()
    source.insert("public.users", {"id": 1, "account_id": 1, "email": "a@x", "settings": None})
    source.update("public.users", (1,), {"id": 7})
    log.append("shard-0", [record(source.take())])
    drain(processor(config_for(tmp_path), log, catalog))
    assert_lake_equals_source(catalog, source)


def test_status_reports_live_rows_last_lsn_and_history(tmp_path: Path, catalog: Catalog) -> None:
    from insightloop.processor.cdc.status import cdc_tables_status

    source, log = saas_source(), MemoryLog()
    for i in range(1, 4):
        source.insert("public.users", {"id": i, "account_id": 1, "email": f"{i}@x", "settings": None})
    last = source.delete("public.users", (2,))
    log.append("shard-0", [record(source.take())])
    config = config_for(tmp_path)
    drain(processor(config, log, catalog))
    (status,) = cdc_tables_status(config, catalog)
    assert (status.table, status.rows_live, status.rows_deleted, status.last_lsn, status.history_rows) == (
        "cleaned.app_users",
        2,
        1,
        last.lsn,
        4,
    )
