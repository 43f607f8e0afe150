"""The CDC reader: publication, slot and snapshot, then the slot's stream, into the CDC log.

Guarantees:

* **Nothing lost.** The slot's flush LSN is confirmed only after every change up to that
  commit is durable in the log (``Log.append`` returns) and the state file says so. After a
  crash, the slot resends everything after the confirmed position; redelivered changes have
  the same ``event_id`` (LSN, table, key), so they deduplicate downstream.
* **Nothing skipped silently.** The reader remembers the database (system identifier and
  name), the slot, and the position it confirmed. A slot that is missing, invalidated (its
  WAL removed), further on than the reader confirmed (dropped and recreated by someone
  else: Debezium's DBZ-5739), or a snapshot that never finished, all lead to a new slot and
  a new snapshot, whose ``SnapshotDone`` marks let the processor delete rows that vanished.
* **Commit order.** One shard, one writer; transactions are appended as the server sends
  them (in commit order), a large one in chunks of ``CHUNK_CHANGES``.
* **Errors say what to change.** An unreachable database, a user without REPLICATION or a
  server without ``wal_level = logical`` stop the reader with a ``ConfigError``; a
  connection lost later is retried with back-off and resumes from the confirmed LSN.
"""

from __future__ import annotations

import select
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import psycopg2
import psycopg2.extras
import structlog

from insightloop.cdc import pgoutput
from insightloop.cdc.changes import ChangeBatch, ColumnFill, encode_batch
from insightloop.cdc.envelope import Envelopes, TableShape
from insightloop.cdc.fills import column_fills
from insightloop.cdc.metrics import CdcMetrics
from insightloop.cdc.snapshot import take_snapshot
from insightloop.cdc.source import (
    SqlConnection,
    TypeNames,
    check_server,
    connect_replication,
    connect_sql,
    create_slot,
    drop_slot,
    ensure_publication,
    identify_system,
    publication_tables,
    slot_info,
)
from insightloop.cdc.state import (
    ReaderState,
    SnapshotProgress,
    format_lsn,
    load_state,
    save_state,
    state_path,
)
from insightloop.cdc.transactions import Assembler
from insightloop.config import Config
from insightloop.errors import ConfigError, TerminalError, TransientError
from insightloop.log import Log

_log = structlog.get_logger(__name__)

#: Failures a new connection may cure.
TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    psycopg2.errors.ObjectInUse,
    TransientError,
    OSError,
)

#: Flush to the log at most this many records / changes at once.
FLUSH_RECORDS = 1000
FLUSH_CHANGES = 20_000
#: How often the slot is inspected for lag and WAL retention, and keepalive positions confirmed.
POLL_SECONDS = 5.0
KEEPALIVE_CONFIRM_SECONDS = 1.0


class _Stopped(Exception):
    """Asked to stop in the middle of a snapshot."""


@dataclass
class _Pending:
    records: list[bytes] = field(default_factory=list)
    changes: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    commit_ts_us: list[int] = field(default_factory=list)
    confirm_to: int | None = None

    def add(self, batch: ChangeBatch) -> None:
        self.records.append(encode_batch(batch))
        self.changes += len(batch.changes) + len(batch.column_fills)
        self.ops.update(c.op for c in batch.changes)

    @property
    def full(self) -> bool:
        return len(self.records) >= FLUSH_RECORDS or self.changes >= FLUSH_CHANGES


class Reader:
    def __init__(self, config: Config, dsn: str, log: Log, metrics: CdcMetrics | None = None) -> None:
        self.settings = config.cdc
        self.dsn = dsn
        self.log = log
        self.shard = log.shards()[0]
        self.metrics = metrics or CdcMetrics()
        self.state_file = state_path(config)
        self.state = load_state(self.state_file)
        self._connected_once = False

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Snapshot if needed, then stream until ``stop``; transient failures are retried with
        back-off, resuming from the confirmed LSN. Raises ``TerminalError`` otherwise."""
        from insightloop.processor.retry import Backoff

        backoff = Backoff(first=0.2, cap=15.0)
        while not stop.is_set():
            try:
                self.session(stop)
                return
            except TerminalError:
                self.metrics.errors.labels("terminal").inc()
                raise
            except TRANSIENT as exc:
                self.metrics.errors.labels("transient").inc()
                delay = backoff.next_delay()
                _log.warning(
                    "cdc reader retrying after a transient failure",
                    error=f"{type(exc).__name__}: {str(exc).strip()}",
                    attempt=backoff.failures,
                    retry_in=round(delay, 2),
                )
                stop.wait(delay)

    def session(self, stop: threading.Event) -> None:
        """One connection's worth of work: returns when ``stop`` is set."""
        first = not self._connected_once
        sql = connect_sql(self.dsn, first=first)
        try:
            check_server(sql)
            repl = connect_replication(self.dsn, first=first)
            self._connected_once = True
            try:
                cursor = repl.cursor()
                system_id, database = identify_system(cursor)
                ensure_publication(sql, self.settings.publication, self.settings.tables)
                envelopes = Envelopes(self.settings.source, database)
                reason = self._snapshot_reason(sql, system_id, database)
                if reason is not None:
                    try:
                        self._snapshot(sql, cursor, envelopes, system_id, database, reason, stop)
                    except _Stopped:
                        _log.info("stopped during the snapshot: it starts over at the next start")
                        return
                if not stop.is_set():
                    self._stream(sql, cursor, envelopes, stop)
            finally:
                repl.close()
        finally:
            sql.close()

    # -- slot and snapshot ---------------------------------------------------------------

    def _snapshot_reason(self, sql: SqlConnection, system_id: str, database: str) -> str | None:
        """Why a new slot and snapshot are needed, or None to stream on from the state."""
        name = self.settings.slot
        slot = slot_info(sql, name)
        if slot is not None and slot.plugin != "pgoutput":
            raise ConfigError(
                f"replication slot {name!r} uses plugin {slot.plugin!r}, not pgoutput: use another cdc.slot"
            )
        if slot is not None and slot.database != database:
            raise ConfigError(
                f"replication slot {name!r} belongs to database {slot.database!r}, not {database!r}"
            )
        st = self.state
        if st is None or (st.system_id, st.database, st.slot) != (system_id, database, name):
            return "new"
        if not st.snapshot.complete:
            return "interrupted"
        if slot is None:
            return "slot_lost"
        if slot.wal_status == "lost" or slot.confirmed_lsn is None:
            return "slot_invalidated"
        if slot.confirmed_lsn > st.confirmed_lsn:
            return "slot_recreated"
        return None

    def _snapshot(
        self,
        sql: SqlConnection,
        cursor: psycopg2.extras.ReplicationCursor,
        envelopes: Envelopes,
        system_id: str,
        database: str,
        reason: str,
        stop: threading.Event,
    ) -> None:
        name = self.settings.slot
        previous = self.state
        if reason in ("slot_lost", "slot_invalidated", "slot_recreated"):
            _log.warning(
                "replication slot lost or replaced while the reader was away: changes since the last "
                "confirmed LSN may be missing from the stream, so the tables are snapshotted again",
                slot=name,
                reason=reason,
                confirmed_lsn=format_lsn(previous.confirmed_lsn) if previous else None,
            )
        if slot_info(sql, name) is not None:
            drop_slot(sql, name)
        created = create_slot(cursor, name)
        reads_lsn = _reads_lsn(sql, name, created.consistent_lsn)
        tables = publication_tables(sql, self.settings.publication)
        st = ReaderState(
            system_id=system_id,
            database=database,
            slot=name,
            slot_lsn=created.consistent_lsn,
            confirmed_lsn=created.consistent_lsn,
            snapshot=SnapshotProgress(tables_total=len(tables), started_at=time.time()),
            resnapshots=(previous.resnapshots + (reason != "new")) if previous else 0,
            snapshot_lsn=reads_lsn,
        )
        save_state(self.state_file, st)
        self.state = st
        m = self.metrics
        m.snapshots.labels(reason).inc()
        m.snapshot_tables_total.set(len(tables))
        m.snapshot_tables_done.set(0)
        m.snapshot_rows.set(0)
        _log.info(
            "snapshot started",
            slot=name,
            lsn=format_lsn(created.consistent_lsn),
            tables=len(tables),
            reason=reason,
        )

        def append(batch: ChangeBatch) -> None:
            if stop.is_set():
                raise _Stopped
            self.log.append(self.shard, [encode_batch(batch)])
            m.records.inc()
            if batch.changes:
                m.changes.labels("r").inc(len(batch.changes))
                st.snapshot.rows += len(batch.changes)
                m.snapshot_rows.set(st.snapshot.rows)

        def table_done(shape: TableShape, rows: int) -> None:
            st.snapshot.tables_done.append(shape.name)
            st.columns[shape.name] = [c.name for c in shape.columns]
            save_state(self.state_file, st)
            m.snapshot_tables_done.set(len(st.snapshot.tables_done))

        reads = connect_sql(self.dsn)
        try:
            counts = take_snapshot(
                reads, created.snapshot_name, tables, envelopes, reads_lsn, append, table_done
            )
        finally:
            reads.close()
        st.snapshot.complete = True
        st.snapshot.finished_at = time.time()
        save_state(self.state_file, st)
        m.confirmed_lsn.set(st.confirmed_lsn)
        _log.info("snapshot complete", slot=name, tables=counts.tables, rows=counts.rows)

    # -- streaming -----------------------------------------------------------------------

    def _stream(
        self,
        sql: SqlConnection,
        cursor: psycopg2.extras.ReplicationCursor,
        envelopes: Envelopes,
        stop: threading.Event,
    ) -> None:
        st = self.state
        assert st is not None
        cursor.start_replication(
            slot_name=self.settings.slot,
            slot_type=psycopg2.extras.REPLICATION_LOGICAL,
            start_lsn=st.confirmed_lsn,
            decode=False,
            options={"proto_version": "1", "publication_names": self.settings.publication},
            status_interval=10,
        )
        _log.info("streaming changes", slot=self.settings.slot, from_lsn=format_lsn(st.confirmed_lsn))
        self.metrics.confirmed_lsn.set(st.confirmed_lsn)
        slot = self.settings.slot

        def fills(oid: int, shape: TableShape, new: list[str], lsn: int) -> list[ColumnFill]:
            found = column_fills(sql, oid, shape, new, lsn, slot)
            if found:
                _log.info(
                    "added columns with a stored default: rows before them take it",
                    table=shape.name,
                    columns=[f.column for f in found],
                    lsn=format_lsn(lsn),
                )
            return found

        # The state's columns are updated in place at each commit and saved with the confirmed LSN.
        assembler = Assembler(envelopes, TypeNames(sql), known=st.columns, fills=fills)
        pending = _Pending()
        last_poll = 0.0
        last_keepalive = time.monotonic()
        while not stop.is_set():
            message = cursor.read_message()
            if message is not None:
                self.metrics.received_lsn.set(message.data_start)
                chunk = assembler.feed(pgoutput.decode(message.payload), message.data_start)
                if chunk is not None:
                    if chunk.changes or chunk.fills:
                        pending.add(chunk.batch(self.settings.source))
                    if chunk.commit_end_lsn is not None:
                        pending.confirm_to = chunk.commit_end_lsn
                        pending.commit_ts_us.append(chunk.commit_ts_us)
                    if pending.full:
                        pending = self._flush(cursor, pending, behind=True)
                continue
            pending = self._flush(cursor, pending, behind=False)
            now = time.monotonic()
            if not assembler.in_transaction and now - last_keepalive >= KEEPALIVE_CONFIRM_SECONDS:
                # Nothing in flight: the server's sent position (keepalives) is safe to confirm,
                # as PostgreSQL's own subscriber does; the slot then frees WAL of other tables.
                last_keepalive = now
                if cursor.wal_end > st.confirmed_lsn:
                    self._confirm(cursor, cursor.wal_end)
                cursor.send_feedback(reply=True)  # ask for a fresh keepalive (the sent position)
            if now - last_poll >= POLL_SECONDS:
                last_poll = now
                self._poll_slot(sql)
            select.select([cursor], [], [], 0.5)
        self._flush(cursor, pending, behind=False)
        _log.info("cdc reader stopped", confirmed_lsn=format_lsn(st.confirmed_lsn))

    def _flush(
        self, cursor: psycopg2.extras.ReplicationCursor, pending: _Pending, *, behind: bool
    ) -> _Pending:
        """Append what is pending (durably), then confirm the last complete transaction."""
        if not pending.records and pending.confirm_to is None:
            return pending
        m = self.metrics
        if pending.records:
            self.log.append(self.shard, pending.records)
            m.records.inc(len(pending.records))
            for op, count in pending.ops.items():
                m.changes.labels(op).inc(count)
        now_us = time.time_ns() // 1000
        for ts in pending.commit_ts_us:
            m.replication_delay.observe(max(now_us - ts, 0) / 1e6)
        if pending.commit_ts_us:
            m.transactions.inc(len(pending.commit_ts_us))
            m.last_delay.set(max(now_us - pending.commit_ts_us[-1], 0) / 1e6)
            m.slot_lag_seconds.set(max(now_us - pending.commit_ts_us[0], 0) / 1e6 if behind else 0.0)
        st = self.state
        assert st is not None
        if pending.confirm_to is not None and pending.confirm_to > st.confirmed_lsn:
            self._confirm(cursor, pending.confirm_to)
        return _Pending()

    def _confirm(self, cursor: psycopg2.extras.ReplicationCursor, lsn: int) -> None:
        """State first, then the slot: the slot is never ahead of the state file."""
        st = self.state
        assert st is not None
        st.confirmed_lsn = lsn
        save_state(self.state_file, st)
        cursor.send_feedback(write_lsn=lsn, flush_lsn=lsn, force=True)
        self.metrics.confirmed_lsn.set(lsn)

    def _poll_slot(self, sql: SqlConnection) -> None:
        slot = slot_info(sql, self.settings.slot)
        if slot is None:
            return
        m = self.metrics
        if slot.lag_bytes is not None:
            m.slot_lag_bytes.set(slot.lag_bytes)
        retained = slot.retained_bytes
        if retained is None:
            return
        m.retained_wal_bytes.set(retained)
        limit = self.settings.wal_warn_bytes
        if limit and retained > limit:
            m.wal_retention_warning.set(1)
            _log.warning(
                "replication slot retains much WAL: the server's disk may fill if the reader falls behind",
                slot=self.settings.slot,
                retained_bytes=retained,
                warn_bytes=limit,
                wal_status=slot.wal_status,
            )
        else:
            m.wal_retention_warning.set(0)


def _reads_lsn(sql: SqlConnection, slot: str, consistent_lsn: int) -> int:
    """The LSN the snapshot's reads (and ``SnapshotDone`` marks) carry: where the new slot's
    decoding started (its ``restart_lsn``), not its consistent point. A transaction that
    began while the slot was being built and commits after the consistent point is not in
    the snapshot but streamed, with WAL records *before* the consistent point; every streamed
    change lies after the restart point, so with it the reads sort before all of them and an
    LSN guard downstream applies those changes instead of taking them for older ones."""
    info = slot_info(sql, slot)
    if info is None or info.restart_lsn is None:
        return consistent_lsn
    return min(info.restart_lsn, consistent_lsn)
