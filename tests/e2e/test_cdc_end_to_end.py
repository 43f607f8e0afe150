"""Change data capture end to end: a real PostgreSQL, the real ``cdc-reader`` and
``cdc-processor`` processes, and the lake tables compared with the source in full.

- the demo workload (multi-row and large transactions, deletes, TOASTed notes, the schema
  change ADD COLUMN then int → bigint) over existing rows: every ``cleaned.app_<table>``
  equals its source table and the history holds one row per source change (counted by the
  server's own statistics), no event id twice;
- kill -9 of the reader and of the processor mid-snapshot and, under load, mid-stream,
  both restarted: the same holds;
- the slot dropped while the reader is down, rows deleted and inserted meanwhile: the
  reader snapshots again and the deleted rows leave the lake (``SnapshotDone``).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cdc_e2e_kit import (  # type: ignore[import-not-found]
    assert_lake_equals_source,
    assert_no_duplicate_history,
    cdc_services,
    change_counts,
    create_zoo,
    current_lsn,
    edge_values,
    log_end,
    move_keys,
    new_database,
    processor_applied,
    raw_committed,
    reader_confirmed,
    redelivered,
    row_counts,
    wait_applied,
    wait_for,
    zoo_changes,
)
from pyiceberg.types import LongType

from insightloop.cdc.appdb import server
from insightloop.cdc.appdb.workload import Workload
from insightloop.cdc.reader import FLUSH_CHANGES
from insightloop.cdc.state import load_state, state_path
from insightloop.cdc.transactions import CHUNK_CHANGES
from insightloop.config import Config
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cdc.naming import state_identifier
from insightloop.testing import Services

pytestmark = pytest.mark.slow

#: Rows of a transaction the reader appends in several flushes (``reader.FLUSH_CHANGES``).
BIG_TRANSACTION = 3 * FLUSH_CHANGES

Conn = psycopg.Connection[tuple[Any, ...]]
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def pg_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    pgdata = tmp_path_factory.mktemp("pg") / "appdb"
    server.start(pgdata)
    port = server.running_port(pgdata)
    assert port is not None
    yield port
    server.stop(pgdata)


@pytest.fixture
def database(pg_port: int) -> str:
    return new_database(pg_port, f"cdc_e2e_{next(_numbers)}")


@pytest.fixture
def cdc(tmp_path: Path, database: str) -> Iterator[tuple[Services, Config]]:
    slot = "e2e_" + database.split("dbname=")[1].split()[0]
    services, config = cdc_services(tmp_path / "data", database, slot)
    try:
        yield services, config
    finally:
        services.stop_all()


def _flushed_counts(conn: Conn, dsn: str) -> dict[str, int]:
    """The server's change counts once ``conn``'s own pending statistics are flushed."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")
    return change_counts(dsn)


def _assert_history_is_one_row_per_change(
    config: Config, dsn: str, snapshot_rows: dict[str, int], before: dict[str, int], after: dict[str, int]
) -> None:
    ids = assert_no_duplicate_history(config, dsn)
    for table, found in ids.items():
        want = snapshot_rows[table] + after.get(table, 0) - before.get(table, 0)
        assert len(found) == want, (
            f"cleaned.app_{table}_changes: {len(found)} rows for {snapshot_rows[table]} snapshot rows"
            f" and {want - snapshot_rows[table]} changes"
        )


def _assert_schema_change_arrived(config: Config) -> None:
    catalog = open_catalog(config)
    accounts = catalog.load_table(state_identifier("public.accounts")).schema()
    assert accounts.find_field("industry") is not None
    invoices = catalog.load_table(state_identifier("public.invoices")).schema()
    assert isinstance(invoices.find_field("amount_cents").field_type, LongType)


def _assert_defaults_filled(config: Config) -> None:
    """Beyond the row-for-row equality: the fill did reach rows no change touched since."""
    data = open_catalog(config).load_table(state_identifier("public.accounts")).scan().to_arrow()
    live = [r for r in data.to_pylist() if not r["_deleted"]]
    assert any(r["tier"] == "gold" and r["region"] == "eu" for r in live)
    assert any(r["region"] is None for r in live) and any(r["tier"] == "silver" for r in live)


def _snapshot_under_way(config: Config) -> bool:
    st = load_state(state_path(config))
    return st is not None and not st.snapshot.complete and st.snapshot.rows > 0


def _applying(config: Config) -> bool:
    """The processor has committed part of the log to raw, not all of it."""
    committed = raw_committed(config)
    return committed > 0 and not processor_applied(config, log_end(config))


def test_workload_with_schema_change_arrives_row_for_row(database: str, cdc: tuple[Services, Config]) -> None:
    services, config = cdc
    with psycopg.connect(database) as conn:
        workload = Workload(conn, seed=3, large_every=0)
        workload.run(changes=800)  # rows that exist before the reader: the snapshot's
        edge_values(conn, "snapshot")
        create_zoo(conn)
        zoo_changes(conn, 1, 6)
        snapshot_rows = row_counts(database)
        before = _flushed_counts(conn, database)
        services.start("cdc-reader")
        services.start("cdc-processor")
        wait_for(lambda: bool(load_state(state_path(config))), 60, "the reader to start", services)
        workload.large_every, workload.large_rows = 40, (300, 1500)
        workload.schema_change_at = workload.stats.changes + 1500
        workload.run(changes=5000, rate=4000)
        edge_values(conn, "stream")
        zoo_changes(conn, 7, 14)
        moved = move_keys(conn)
        # The new column and the promoted one carry values only the new types can hold.
        conn.execute("UPDATE accounts SET industry = 'saas ' || id WHERE id % 3 = 0")
        conn.execute("UPDATE invoices SET amount_cents = amount_cents + 5000000000 WHERE id % 4 = 0")
        conn.commit()
        # Columns added with a stored default (PostgreSQL writes no rows: the reader's
        # ColumnFill), then later explicit values, an explicit NULL among them.
        conn.execute("ALTER TABLE accounts ADD COLUMN tier text NOT NULL DEFAULT 'gold'")
        conn.execute("ALTER TABLE accounts ADD COLUMN region text DEFAULT 'eu'")
        conn.commit()
        conn.execute("UPDATE accounts SET tier = 'silver' WHERE id % 5 = 0")
        conn.execute("UPDATE accounts SET region = NULL WHERE id % 7 = 0")
        conn.commit()
        after = _flushed_counts(conn, database)
    stats = workload.stats
    assert stats.schema_changes == 2 and stats.large_transactions >= 1
    assert {"close", "leave", "unflag", "notes", "settings"} <= set(stats.kinds)
    wait_applied(config, database, services)
    assert_lake_equals_source(config, database)
    _assert_schema_change_arrived(config)
    _assert_defaults_filled(config)
    # A primary key update is one source change and two history rows.
    after = {**after, "feature_flags": after["feature_flags"] + moved}
    _assert_history_is_one_row_per_change(config, database, snapshot_rows, before, after)


def test_kill_9_of_reader_and_processor_mid_snapshot_and_mid_stream(
    database: str, cdc: tuple[Services, Config]
) -> None:
    services, config = cdc
    rng = random.Random(20261126)
    stop = threading.Event()
    with psycopg.connect(database) as conn:
        workload = Workload(conn, seed=11, large_every=25, large_rows=(500, 2500), schema_change_at=6000)
        workload.run(changes=400)
        conn.execute(  # a snapshot long enough to be killed in
            "INSERT INTO users (email, full_name, created_at)"
            " SELECT 'bulk' || g || '@x.example', repeat('n', 100), now() FROM generate_series(1, 40000) g"
        )
        workload._load_ids()
        snapshot_rows = row_counts(database)
        before = _flushed_counts(conn, database)

        # Mid-snapshot: the reader while it writes the snapshot, the processor while it applies it.
        services.start("cdc-reader")
        services.start("cdc-processor")
        wait_for(lambda: _snapshot_under_way(config), 60, "the snapshot to start", services)
        time.sleep(rng.uniform(0.0, 0.2))
        services.kill("cdc-reader")
        interrupted = load_state(state_path(config))
        assert interrupted is not None and not interrupted.snapshot.complete
        services.start("cdc-reader")
        wait_for(lambda: _snapshot_under_way(config), 60, "the snapshot to start again", services)
        wait_for(lambda: _applying(config), 60, "the processor to apply part of the snapshot", services)
        services.kill("cdc-processor")
        services.start("cdc-processor")

        # Mid-stream, under load: large transactions are chunked across log records. (The
        # load starts once the snapshot is complete: a snapshot taken again under load would
        # absorb changes, and the history could not be counted against them.)
        wait_for(lambda: reader_confirmed(config) > 0, 90, "the snapshot to complete", services)
        runner = threading.Thread(target=lambda: workload.run(rate=2500, stop=stop), daemon=True)
        runner.start()
        try:
            for _ in range(3):
                for service in rng.sample(["cdc-reader", "cdc-processor"], 2):
                    time.sleep(rng.uniform(0.5, 2.5))
                    services.kill(service)
                    services.start(service)
        finally:
            stop.set()
            runner.join(60)

        # Certainly mid-transaction: one larger than the reader flushes at once, so its
        # first chunks are durable in the log before its commit is confirmed; the reader is
        # killed right then, and the slot sends the whole transaction again.
        caught_up = current_lsn(database)
        wait_for(lambda: reader_confirmed(config) >= caught_up, 90, "the reader to catch up", services)
        end = log_end(config)
        conn.execute(
            "INSERT INTO users (email, full_name, created_at) SELECT 'big' || g || '@x.example',"
            " 'big', now() FROM generate_series(1, %s) g",
            (BIG_TRANSACTION,),
        )
        committed = current_lsn(database)
        wait_for(
            lambda: log_end(config) > end or reader_confirmed(config) >= committed,
            60,
            "the big transaction's first chunks",
            services,
            poll=0.01,
        )
        in_the_middle = reader_confirmed(config) < committed
        services.kill("cdc-reader")
        services.start("cdc-reader")
        after = _flushed_counts(conn, database)
    assert in_the_middle, "the reader confirmed the big transaction before it could be killed"
    assert workload.stats.large_transactions >= 2 and workload.stats.schema_changes == 2
    wait_applied(config, database, services, timeout=120)
    assert_lake_equals_source(config, database)
    _assert_history_is_one_row_per_change(config, database, snapshot_rows, before, after)
    assert redelivered(config) >= CHUNK_CHANGES, "no change was sent twice: the kill missed"


def _drop_slot(conn: Conn, slot: str) -> None:
    """Drop ``slot`` once the killed reader's walsender has let go of it."""
    deadline = time.monotonic() + 30
    while True:
        try:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_slot_dropped_while_reader_down_is_resnapshotted(database: str, cdc: tuple[Services, Config]) -> None:
    services, config = cdc
    with psycopg.connect(database) as conn:
        workload = Workload(conn, seed=23, large_every=0)
        workload.run(changes=600)
        # The slot is built and the snapshot taken under load: transactions in flight at the
        # slot's consistent point are streamed, with WAL positions before it.
        stop = threading.Event()
        runner = threading.Thread(target=lambda: workload.run(rate=2000, stop=stop), daemon=True)
        runner.start()
        try:
            services.start("cdc-reader")
            services.start("cdc-processor")
            wait_for(lambda: reader_confirmed(config) > 0, 60, "the snapshot", services)
        finally:
            stop.set()
            runner.join(60)
        conn.execute("TRUNCATE feature_flags")
        workload._load_ids()
        edge_values(conn, "after-truncate")
        assert move_keys(conn) == 2
        workload.run(changes=200)
        wait_applied(config, database, services)
        assert_lake_equals_source(config, database)
        first = load_state(state_path(config))
        assert first is not None and first.resnapshots == 0

        services.kill("cdc-reader")
        _drop_slot(conn, config.cdc.slot)
        # Changes no slot sees: only the new snapshot can tell, deletes by their absence.
        gone = [r[0] for r in conn.execute("SELECT id FROM accounts ORDER BY id LIMIT 3").fetchall()]
        with conn.transaction():
            conn.execute("DELETE FROM accounts WHERE id = ANY(%s)", (gone,))  # cascades
            conn.execute("DELETE FROM users WHERE id IN (SELECT id FROM users ORDER BY id DESC LIMIT 5)")
        workload._load_ids()
        workload.run(changes=400)
        services.start("cdc-reader")
        wait_applied(config, database, services)
    st = load_state(state_path(config))
    assert st is not None and st.resnapshots == 1 and st.slot_lsn > first.slot_lsn
    assert_lake_equals_source(config, database)
    assert_no_duplicate_history(config, database)
    # The deleted accounts are tombstones now, each closed by a 'd' history row of the sweep.
    catalog = open_catalog(config)
    state = catalog.load_table(state_identifier("public.accounts")).scan().to_arrow().to_pylist()
    assert {r["id"] for r in state if r["_deleted"]} >= set(gone)
    history = catalog.load_table("cleaned.app_accounts_changes").scan().to_arrow().to_pylist()
    vanished = {r["id"] for r in history if r["event_id"].startswith("vanished:")}
    assert set(gone) <= vanished  # and the accounts the workload closed meanwhile
