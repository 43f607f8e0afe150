"""The reader against a real PostgreSQL: the snapshot, streamed changes in commit order,
unchanged TOAST values, schema changes, and a whole workload replayed equal to the source."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from cdc_kit import (  # type: ignore[import-not-found]
    assert_log_matches_source,
    changes_only,
    read_log,
    reader_thread,
    replay,
    source_rows,
    wait_caught_up,
)
from structlog.testing import capture_logs

from insightloop.cdc import reader as reader_module
from insightloop.cdc.appdb.schema import TABLES
from insightloop.cdc.appdb.workload import Workload
from insightloop.cdc.changes import ColumnFill, SnapshotDone
from insightloop.cdc.fills import missing_element
from insightloop.cdc.state import load_state, state_path
from insightloop.config import Config

ALL = [f"public.{t}" for t in TABLES]


def test_snapshot_reads_each_existing_row_once_with_its_values(config: Config, dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        Workload(conn, seed=3, large_every=0).run(changes=600)
    with reader_thread(config, dsn):
        wait_caught_up(config, dsn)
    items, _ = read_log(config)
    changes = changes_only(items)
    assert {c.op for c in changes} == {"r"}
    source = source_rows(dsn, ALL)
    for table in ALL:
        reads = [c for c in changes if c.table == table]
        assert len(reads) == len(source[table])
        assert len({c.event_id for c in reads}) == len(reads)
        keys = [col.name for col in reads[0].event.columns if col.key] if reads else []
        for c in reads:
            assert c.event.after is not None
            assert source[table][tuple(c.event.after[k] for k in keys)] == c.event.after
    done = {d.table: d for d in items if isinstance(d, SnapshotDone)}
    assert set(done) == set(ALL)
    assert all(done[t].rows == len(source[t]) for t in ALL)
    assert len({c.lsn for c in changes} | {d.lsn for d in done.values()}) == 1


def test_streamed_changes_come_in_commit_order_with_before_and_after(config: Config, dsn: str) -> None:
    with reader_thread(config, dsn), psycopg.connect(dsn, autocommit=True) as conn:
        wait_caught_up(config, dsn)
        with conn.transaction():
            conn.execute("INSERT INTO accounts (id, name, mrr) VALUES (1, 'Acme', 10.50), (2, 'Globex', 0)")
            conn.execute("INSERT INTO users (id, email) VALUES (7, 'a@acme.example')")
            conn.execute("INSERT INTO memberships (account_id, user_id, role) VALUES (1, 7, 'owner')")
        conn.execute("UPDATE accounts SET mrr = 99.99, settings = '{\"x\": [1, 2]}' WHERE id = 1")
        conn.execute(
            "INSERT INTO feature_flags (account_id, flag, enabled, rollout, tags)"
            " VALUES (2, 'f', true, 0.5, '{a,\"b c\"}')"
        )
        conn.execute("DELETE FROM memberships WHERE account_id = 1 AND user_id = 7")
        conn.execute("TRUNCATE feature_flags")
        wait_caught_up(config, dsn)
    changes = [c for c in changes_only(read_log(config)[0]) if c.op != "r"]
    got = [(c.op, c.table) for c in changes]
    assert got == [
        ("c", "public.accounts"),
        ("c", "public.accounts"),
        ("c", "public.users"),
        ("c", "public.memberships"),
        ("u", "public.accounts"),
        ("c", "public.feature_flags"),
        ("d", "public.memberships"),
        ("t", "public.feature_flags"),
    ]
    lsns = [c.lsn for c in changes]
    assert lsns == sorted(lsns)
    first_tx = {c.event.source.txId for c in changes[:4]}
    assert len(first_tx) == 1 and None not in first_tx
    insert, update, flag, delete = changes[0].event, changes[4].event, changes[5].event, changes[6].event
    assert insert.after is not None and insert.after["mrr"] == "10.50" and insert.after["name"] == "Acme"
    assert insert.after["created_at"].endswith("+00:00")
    assert (
        update.after is not None
        and update.after["mrr"] == "99.99"
        and update.after["settings"] == {"x": [1, 2]}
    )
    assert update.before is None  # default replica identity, key unchanged
    assert flag.after is not None and flag.after["tags"] == ["a", "b c"] and flag.after["rollout"] == 0.5
    assert delete.before == {"account_id": 1, "user_id": 7}  # the key only
    assert delete.after is None
    assert [c.name for c in delete.columns if c.key] == ["account_id", "user_id"]


def test_unchanged_toast_column_is_named_and_left_out(config: Config, dsn: str) -> None:
    with reader_thread(config, dsn), psycopg.connect(dsn, autocommit=True) as conn:
        wait_caught_up(config, dsn)
        big = " ".join(f"{i:08x}{i * 7919:08x}" for i in range(4000))  # ~68 KB, poorly compressible
        conn.execute("INSERT INTO accounts (id, name, notes) VALUES (5, 'Initech', %s)", (big,))
        conn.execute("UPDATE accounts SET status = 'active' WHERE id = 5")
        wait_caught_up(config, dsn)
    insert, update = changes_only(read_log(config)[0])[-2:]
    assert insert.event.after is not None and insert.event.after["notes"] == big
    assert update.op == "u" and update.event.unchanged == ["notes"]
    assert update.event.after is not None and "notes" not in update.event.after
    assert update.event.after["status"] == "active"


def test_schema_change_shows_in_columns(config: Config, dsn: str) -> None:
    with reader_thread(config, dsn), psycopg.connect(dsn, autocommit=True) as conn:
        wait_caught_up(config, dsn)
        conn.execute("INSERT INTO accounts (id, name) VALUES (1, 'Acme')")
        conn.execute(
            "INSERT INTO invoices (account_id, number, amount, amount_cents, issued_at)"
            " VALUES (1, 'I1', 1, 100, now())"
        )
        conn.execute("ALTER TABLE accounts ADD COLUMN industry text")
        conn.execute("UPDATE accounts SET industry = 'saas' WHERE id = 1")
        conn.execute("ALTER TABLE invoices ALTER COLUMN amount_cents TYPE bigint")
        conn.execute(
            "INSERT INTO invoices (account_id, number, amount, amount_cents, issued_at)"
            " VALUES (1, 'I2', 1, 9000000000, now())"
        )
        wait_caught_up(config, dsn)
    changes = [c for c in changes_only(read_log(config)[0]) if c.op != "r"]
    types = [{col.name: col.type for col in c.event.columns} for c in changes]
    assert "industry" not in types[0]
    assert types[1]["amount_cents"] == "integer" and types[1]["amount"] == "numeric(12,2)"
    assert types[2]["industry"] == "text" and changes[2].event.after is not None
    assert changes[2].event.after["industry"] == "saas"
    assert types[3]["amount_cents"] == "bigint"
    assert changes[3].event.after is not None and changes[3].event.after["amount_cents"] == 9_000_000_000


def test_workload_with_large_transactions_and_schema_change_replays_to_the_source(
    config: Config, dsn: str
) -> None:
    with psycopg.connect(dsn) as conn:
        workload = Workload(conn, seed=11, large_every=150, schema_change_at=800)
        workload.run(changes=500)  # before the reader: snapshotted
        with reader_thread(config, dsn):
            stats = workload.run(changes=4000)
            wait_caught_up(config, dsn)
    assert stats.large_transactions >= 2 and stats.schema_changes == 2
    changes = assert_log_matches_source(config, dsn, ALL)
    assert {"r", "c", "u", "d"} <= {c.op for c in changes}


def _snapshot_complete(config: Config) -> bool:
    st = load_state(state_path(config))
    return st is not None and st.snapshot.complete


def test_a_transaction_in_flight_at_the_consistent_point_streams_after_the_reads(
    config: Config, dsn: str
) -> None:
    """A transaction that began while the slot was being created and commits after its
    consistent point is not in the snapshot, so it is streamed; its WAL records lie *before*
    the consistent point. The snapshot reads must carry an LSN below them (where the slot's
    decoding started), or the processor's LSN guard would take the streamed change for an
    older one than the read and drop it (a lost update). The slot's snapshot builder is
    driven through its states by WAL order alone: A blocks it, B starts, A ends (full
    snapshot), C starts, B ends (consistent: C still running)."""
    admin = psycopg.connect(dsn, autocommit=True)
    a, b, c = (psycopg.connect(dsn) for _ in range(3))
    try:
        admin.execute("INSERT INTO users (id, email) VALUES (1, 'one@x.example'), (2, 'two@x.example')")
        a.execute("UPDATE plans SET name = name WHERE id = 1")  # A holds an xid
        with reader_thread(config, dsn):
            query = "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s"
            deadline = time.monotonic() + 30
            while not admin.execute(query, (config.cdc.slot,)).fetchone():
                assert time.monotonic() < deadline, "the reader did not start creating its slot"
                time.sleep(0.05)
            b.execute("UPDATE users SET full_name = 'by B' WHERE id = 1")
            a.commit()
            admin.execute("SELECT pg_log_standby_snapshot()")
            c.execute("UPDATE users SET full_name = 'by C' WHERE id = 2")
            b.commit()
            admin.execute("SELECT pg_log_standby_snapshot()")
            deadline = time.monotonic() + 30
            while not _snapshot_complete(config):
                assert time.monotonic() < deadline, "the snapshot did not complete"
                time.sleep(0.05)
            c.commit()
            wait_caught_up(config, dsn)
    finally:
        for conn in (admin, a, b, c):
            conn.close()
    changes = changes_only(read_log(config)[0])
    reads = [ch for ch in changes if ch.op == "r" and ch.table == "public.users"]
    streamed = [ch for ch in changes if ch.op != "r" and ch.table == "public.users"]
    assert {r.event.after["full_name"] for r in reads if r.event.after} >= {"by B", None}
    (by_c,) = [ch for ch in streamed if ch.event.after and ch.event.after["full_name"] == "by C"]
    assert all(r.lsn < by_c.lsn for r in reads), "a streamed change sorts before the snapshot reads"
    assert_log_matches_source(config, dsn, ALL)


def test_a_table_rewritten_after_the_slot_is_created_is_snapshotted_again(
    config: Config, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite (here the demo workload's ``amount_cents`` int → bigint) committed between
    the slot's creation and the snapshot reading the table leaves the table empty under the
    slot's snapshot, and streams none of its rows: the reader must take a new snapshot."""
    with psycopg.connect(dsn) as conn:
        Workload(conn, seed=3, large_every=0).run(changes=300)
    take_snapshot = reader_module.take_snapshot
    rewrites: list[str] = []

    def rewrite_first(*args: Any, **kwargs: Any) -> Any:
        if not rewrites:  # after the slot, before the reads: as a concurrent ALTER can
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("ALTER TABLE invoices ALTER COLUMN amount_cents TYPE bigint")
            rewrites.append("invoices")
        return take_snapshot(*args, **kwargs)

    monkeypatch.setattr(reader_module, "take_snapshot", rewrite_first)
    with capture_logs() as logs, reader_thread(config, dsn):
        wait_caught_up(config, dsn)
    assert rewrites == ["invoices"]
    assert source_rows(dsn, ["public.invoices"])["public.invoices"], "the workload made invoices"
    assert_log_matches_source(config, dsn, ALL)
    assert any("public.invoices was rewritten" in str(e.get("error")) for e in logs)


def _fills(config: Config) -> list[ColumnFill]:
    return [i for i in read_log(config)[0] if isinstance(i, ColumnFill)]


def test_column_added_with_a_stored_default_is_filled_into_older_rows(config: Config, dsn: str) -> None:
    """PostgreSQL 11+ keeps a constant default of ADD COLUMN in the catalog and streams
    nothing for the rows already there: the reader sends it as a ColumnFill."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO accounts (id, name) VALUES (1, 'Acme'), (2, 'Globex')")
        with reader_thread(config, dsn):
            wait_caught_up(config, dsn)
            conn.execute("INSERT INTO accounts (id, name) VALUES (3, 'Initech')")
            conn.execute(
                "ALTER TABLE accounts ADD COLUMN tier text NOT NULL DEFAULT 'gold',"
                " ADD COLUMN vip boolean NOT NULL DEFAULT true,"
                " ADD COLUMN quota numeric(8,2) DEFAULT 1.5,"
                """ ADD COLUMN label text DEFAULT 'a, "b"\\c'"""
            )
            conn.execute("INSERT INTO accounts (id, name, tier) VALUES (4, 'Umbrella', 'silver')")
            conn.execute("UPDATE accounts SET label = NULL WHERE id = 2")  # explicit, after the fill
            # The catalog is read when the stream gets there: before the rewrite below.
            wait_caught_up(config, dsn)
            # A volatile default rewrites the table: no missing value, so no fill (a warning).
            # (now() is stable, not volatile: evaluated once, it is a missing value, and filled.)
            with capture_logs() as logs:
                conn.execute(
                    "ALTER TABLE accounts ADD COLUMN seen_at timestamptz NOT NULL DEFAULT clock_timestamp()"
                )
                conn.execute("UPDATE accounts SET name = 'Acme 2' WHERE id = 1")
                wait_caught_up(config, dsn)
        warned = [e for e in logs if e.get("column") == "seen_at" and e["log_level"] == "warning"]
        assert warned and warned[0]["table"] == "public.accounts"
        assert "insightloop cdc reader" in warned[0]["event"]
        fills = _fills(config)
        insert = next(c for c in changes_only(read_log(config)[0]) if c.op == "c" and c.event.after
                      and c.event.after["id"] == 4)  # fmt: skip
        assert [(f.table, f.column, f.type, f.value) for f in fills] == [
            ("public.accounts", "tier", "text", "gold"),
            ("public.accounts", "vip", "boolean", True),
            ("public.accounts", "quota", "numeric(8,2)", "1.50"),
            ("public.accounts", "label", "text", 'a, "b"\\c'),
        ]
        assert {f.lsn for f in fills} == {insert.lsn}  # the first change streamed with them
        st = load_state(state_path(config))
        assert st is not None and "tier" in st.columns["public.accounts"]
        # Restarted, the reader knows the columns: no fill again.
        with reader_thread(config, dsn):
            conn.execute("UPDATE accounts SET name = 'Globex 2' WHERE id = 2")
            wait_caught_up(config, dsn)
        assert len(_fills(config)) == 4
    replayed = replay(read_log(config)[0])["public.accounts"]
    assert {k[0]: (r.get("tier"), r.get("label")) for k, r in replayed.items()} == {
        1: ("gold", 'a, "b"\\c'),
        2: ("gold", None),
        3: ("gold", 'a, "b"\\c'),
        4: ("silver", 'a, "b"\\c'),
    }
    # Row for row equal to the source, but for seen_at (rewritten by PostgreSQL, not streamed).
    source = source_rows(dsn, ["public.accounts"])["public.accounts"]
    assert set(source) == set(replayed)
    for key, row in source.items():
        assert {n: v for n, v in replayed[key].items() if n != "seen_at"} == {
            n: v for n, v in row.items() if n != "seen_at"
        }
    assert replayed[(1,)]["seen_at"] is not None and replayed[(3,)].get("seen_at") is None


def test_missing_element_parses_the_one_element_array_text() -> None:
    assert missing_element("{gold}") == "gold"
    assert missing_element('{"a, b"}') == "a, b"
    assert missing_element('{"q\\"x\\\\y"}') == 'q"x\\y'
    assert missing_element("{NULL}") is None
    assert missing_element('{"NULL"}') == "NULL"
    assert missing_element('{""}') == ""
