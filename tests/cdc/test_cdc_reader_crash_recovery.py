"""kill -9 of the reader process mid-stream and mid-snapshot, and a slot lost or replaced
while the reader was down: afterwards the log, replayed, equals the source, with no change
lost and duplicates only as identical event ids."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import psycopg
from cdc_kit import (  # type: ignore[import-not-found]
    assert_log_matches_source,
    changes_only,
    read_log,
    reader_thread,
    spawn_reader,
    wait_caught_up,
)

from insightloop.cdc.appdb.schema import TABLES
from insightloop.cdc.appdb.workload import Workload
from insightloop.cdc.state import load_state, state_path
from insightloop.config import Config

ALL = [f"public.{t}" for t in TABLES]


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _drop_slot(conn: psycopg.Connection[tuple[object, ...]], slot: str) -> None:
    """Drop ``slot`` once the stopped reader's server process has let go of it."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _confirmed(config: Config) -> int:
    st = load_state(state_path(config))
    return st.confirmed_lsn if st is not None and st.snapshot.complete else 0


def test_kill_9_mid_stream_loses_and_doubles_nothing(config: Config, dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "reader.log"
    stop = threading.Event()
    with psycopg.connect(dsn) as conn:
        workload = Workload(conn, seed=5, large_every=120, large_rows=(500, 3000), schema_change_at=1500)
        workload.run(changes=300)
        proc = spawn_reader(config, dsn, out)
        try:
            _wait_for(lambda: _confirmed(config) > 0)
            runner = threading.Thread(target=lambda: workload.run(rate=3000, stop=stop), daemon=True)
            runner.start()
            for _ in range(3):
                before = _confirmed(config)
                _wait_for(lambda before=before: _confirmed(config) > before)  # it is streaming
                time.sleep(0.3)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                proc = spawn_reader(config, dsn, out)
            stop.set()
            runner.join()
            wait_caught_up(config, dsn)
        finally:
            stop.set()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert workload.stats.large_transactions >= 1
    changes = assert_log_matches_source(config, dsn, ALL)
    assert len(changes) > len({c.event_id for c in changes}) or len(changes) > 1000


def test_kill_9_mid_snapshot_snapshots_again(config: Config, dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        Workload(conn, seed=2, large_every=0).run(changes=200)
        conn.execute(
            "INSERT INTO users (email, full_name, created_at)"
            " SELECT 'bulk' || g || '@x.example', repeat('n', 200), now() FROM generate_series(1, 60000) g"
        )
    out = tmp_path / "reader.log"
    proc = spawn_reader(config, dsn, out)

    def snapshot_under_way() -> bool:
        st = load_state(state_path(config))
        return (
            st is not None
            and not st.snapshot.complete
            and st.snapshot.rows + len(st.snapshot.tables_done) > 0
        )

    _wait_for(snapshot_under_way)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted = load_state(state_path(config))
    assert interrupted is not None and not interrupted.snapshot.complete
    with psycopg.connect(dsn, autocommit=True) as conn:  # changes while it is down
        conn.execute("DELETE FROM users WHERE id IN (SELECT id FROM users WHERE email LIKE 'bulk%' LIMIT 10)")
        conn.execute("UPDATE users SET full_name = 'renamed' WHERE email = 'bulk77@x.example'")
    proc = spawn_reader(config, dsn, out)
    try:
        wait_caught_up(config, dsn)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    st = load_state(state_path(config))
    assert st is not None and st.snapshot.complete and st.slot_lsn > interrupted.slot_lsn
    assert_log_matches_source(config, dsn, ALL)


def test_slot_dropped_while_down_is_detected_and_snapshotted_again(config: Config, dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        workload = Workload(conn, seed=9, large_every=0)
        workload.run(changes=400)
        with reader_thread(config, dsn):
            workload.run(changes=200)
            wait_caught_up(config, dsn)
        first = load_state(state_path(config))
        assert first is not None
        _drop_slot(conn, config.cdc.slot)
        workload.run(changes=300)  # these changes are in no slot: only a new snapshot sees them
        with reader_thread(config, dsn):
            wait_caught_up(config, dsn)
    st = load_state(state_path(config))
    assert st is not None and st.resnapshots == 1 and st.slot_lsn > first.slot_lsn
    assert_log_matches_source(config, dsn, ALL)


def test_slot_recreated_while_down_is_detected(config: Config, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        with reader_thread(config, dsn):
            conn.execute("INSERT INTO accounts (id, name) VALUES (1, 'Acme'), (2, 'Globex')")
            wait_caught_up(config, dsn)
        _drop_slot(conn, config.cdc.slot)
        conn.execute("DELETE FROM accounts WHERE id = 2")  # lost to any slot
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (config.cdc.slot,))
        conn.execute("INSERT INTO accounts (id, name) VALUES (3, 'Initech')")
        with reader_thread(config, dsn):
            wait_caught_up(config, dsn)
    st = load_state(state_path(config))
    assert st is not None and st.resnapshots == 1
    assert_log_matches_source(config, dsn, ALL)
    reads = [c for c in changes_only(read_log(config)[0]) if c.op == "r" and c.lsn == st.snapshot_lsn]
    assert sorted((c.event.after or {})["id"] for c in reads if c.table == "public.accounts") == [1, 3]
