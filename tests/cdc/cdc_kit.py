"""Helpers of the CDC reader tests: read the CDC log back, replay it into tables, read the
source tables the same way, run a reader in a thread or as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from insightloop.cdc.changes import ChangeEvent, ColumnFill, SnapshotDone, decode_batch, decode_event
from insightloop.cdc.reader import Reader
from insightloop.cdc.snapshot import select_rows, table_shape
from insightloop.cdc.state import load_state, parse_lsn, state_path
from insightloop.config import Config
from insightloop.log.factory import open_cdc_log

Rows = dict[str, dict[tuple[Any, ...], dict[str, Any]]]


@dataclass(frozen=True)
class Logged:
    event_id: str
    table: str
    op: str
    lsn: int
    event: ChangeEvent


Item = Logged | SnapshotDone | ColumnFill


def read_log(config: Config) -> tuple[list[Item], int]:
    """Every change, column fill and snapshot mark in the CDC log, in order (each batch's
    fills and marks after its changes, as they apply); and the number of records."""
    log = open_cdc_log(config)
    try:
        shard = log.shards()[0]
        out: list[Item] = []
        after: int | None = None
        records = 0
        while got := log.read(shard, after, max_records=10_000):
            after = got[-1].position.offset
            records += len(got)
            for record in got:
                batch = decode_batch(record.data)
                for c in batch.changes:
                    out.append(Logged(c.event_id, c.table, c.op, c.lsn, decode_event(c.payload)))
                out.extend(batch.column_fills)
                out.extend(batch.snapshot_done)
        return out, records
    finally:
        log.close()


def changes_only(items: list[Item]) -> list[Logged]:
    return [i for i in items if isinstance(i, Logged)]


def _key(event: ChangeEvent, row: dict[str, Any]) -> tuple[Any, ...]:
    keys = [c.name for c in event.columns if c.key]
    return tuple(row[k] for k in keys)


def replay(items: list[Item]) -> Rows:
    """Apply the log as the processor must: dedup streamed changes by event id, upsert by key
    (keeping unchanged TOAST values), delete, truncate, fill an added column's stored default
    into older rows where it is null, and after a table's SnapshotDone drop rows whose last
    change is older than the snapshot."""
    tables: Rows = {}
    lsns: dict[str, dict[tuple[Any, ...], int]] = {}
    seen: set[str] = set()
    for item in items:
        if isinstance(item, SnapshotDone):
            rows, marks = tables.setdefault(item.table, {}), lsns.setdefault(item.table, {})
            for key in [k for k, lsn in marks.items() if lsn < item.lsn]:
                rows.pop(key, None)
                marks.pop(key, None)
            continue
        if isinstance(item, ColumnFill):
            rows, marks = tables.setdefault(item.table, {}), lsns.setdefault(item.table, {})
            for key, row in rows.items():
                if marks[key] < item.lsn and row.get(item.column) is None:
                    row[item.column] = item.value
            continue
        if item.op != "r" and item.event_id in seen:
            continue
        seen.add(item.event_id)
        rows, marks = tables.setdefault(item.table, {}), lsns.setdefault(item.table, {})
        e = item.event
        if item.op == "t":
            rows.clear()
            marks.clear()
        elif item.op == "d":
            assert e.before is not None
            key = _key(e, e.before)
            rows.pop(key, None)
            marks.pop(key, None)
        else:
            assert e.after is not None
            key = _key(e, e.after)
            if e.before is not None and _key(e, e.before) != key:
                rows.pop(_key(e, e.before), None)
            row = dict(e.after)
            for name in e.unchanged:
                row[name] = rows[key][name]
            rows[key] = row
            marks[key] = item.lsn
    return {name: rows for name, rows in tables.items()}


def source_rows(dsn: str, tables: list[str]) -> Rows:
    """The source tables now, values converted as the reader converts them."""
    out: Rows = {}
    with psycopg.connect(dsn, options="-c TimeZone=UTC -c DateStyle=ISO") as conn, conn.transaction():
        for name in tables:
            schema, table = name.split(".")
            shape = table_shape(conn, schema, table)
            rows: dict[tuple[Any, ...], dict[str, Any]] = {}
            for chunk in select_rows(conn, shape):  # type: ignore[arg-type]
                for raw in chunk:
                    row, _ = shape.row(raw)
                    rows[tuple(row[c.name] for c in shape.columns if c.key)] = row
            out[name] = rows
    return out


def assert_log_matches_source(config: Config, dsn: str, tables: list[str]) -> list[Logged]:
    """The replayed log equals the source, row for row; a repeated event id carries the
    identical change. Returns the changes."""
    items, _ = read_log(config)
    changes = changes_only(items)
    by_id: dict[str, Logged] = {}
    for c in changes:
        first = by_id.setdefault(c.event_id, c)
        # A snapshot read repeated by a later snapshot keeps its id (content-based), not its LSN.
        lsns = (first.lsn, c.lsn) if c.op != "r" else (0, 0)
        assert (first.table, first.op, first.event.after, first.event.before, lsns[0]) == (
            c.table,
            c.op,
            c.event.after,
            c.event.before,
            lsns[1],
        ), f"event id {c.event_id} names two different changes"
    replayed = replay(items)
    source = source_rows(dsn, tables)
    for table in tables:
        got, want = replayed.get(table, {}), source[table]
        missing = set(want) - set(got)
        extra = set(got) - set(want)
        assert not missing and not extra, f"{table}: {len(missing)} rows missing, {len(extra)} extra"
        for key, row in want.items():
            # A column added later without a default is null in rows no change has touched
            # since (as downstream); one added with a stored default is filled.
            have = {name: got[key].get(name) for name in row}
            assert set(got[key]) <= set(row), f"{table} {key}: columns {set(got[key]) - set(row)} gone"
            assert have == row, f"{table} {key}: {got[key]} != {row}"
    return changes


def current_lsn(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        return parse_lsn(row[0])


def wait_caught_up(config: Config, dsn: str, timeout: float = 60.0) -> None:
    """Until the reader's confirmed LSN reaches the source's current WAL position."""
    target = current_lsn(dsn)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = load_state(state_path(config))
        if st is not None and st.snapshot.complete and st.confirmed_lsn >= target:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"reader did not catch up with the source within {timeout} s: {load_state(state_path(config))}"
    )


@contextmanager
def reader_thread(config: Config, dsn: str) -> Iterator[Reader]:
    """A reader running in a thread; stopped (and its error raised) on exit."""
    log = open_cdc_log(config)
    reader = Reader(config, dsn, log)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reader.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield reader
    finally:
        stop.set()
        thread.join(30)
        log.close()
    if errors:
        raise errors[0]


def reader_env(config: Config, dsn: str) -> dict[str, str]:
    return {
        **os.environ,
        "INSIGHTLOOP_DATA_DIR": config.data_dir,
        "INSIGHTLOOP__CDC__DSN": dsn,
        "INSIGHTLOOP__CDC__SLOT": config.cdc.slot,
        "INSIGHTLOOP__CDC__PUBLICATION": config.cdc.publication,
        "INSIGHTLOOP__CDC__METRICS_PORT": "0",
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "insightloop", *args]


def spawn_reader(config: Config, dsn: str, log_file: Path) -> subprocess.Popen[bytes]:
    handle = log_file.open("ab")
    return subprocess.Popen(
        cli("cdc", "reader"), env=reader_env(config, dsn), stdout=handle, stderr=subprocess.STDOUT
    )
