"""Talking to the source PostgreSQL: connections, preflight checks, publication and slot.

Two kinds of connection: ordinary SQL (psycopg 3: checks, catalog, snapshot reads) and a
logical replication connection (psycopg2's ``LogicalReplicationConnection``: psycopg 3 has
no client for the streaming replication protocol). Both run with ``TimeZone=UTC`` and
``DateStyle=ISO`` so text values read the same on both paths.

Everything here uses only what RDS/Aurora allow a user with ``rds_replication``: no
superuser functions, no files, no ``ALTER SYSTEM``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg2
import psycopg2.extensions
import psycopg2.extras

from insightloop.cdc.state import parse_lsn
from insightloop.errors import ConfigError, TerminalError, TransientError

SESSION_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO -c bytea_output=hex -c IntervalStyle=postgres"

SqlConnection = psycopg.Connection[tuple[Any, ...]]


def connect_sql(dsn: str, *, first: bool = False, timeout: int = 10) -> SqlConnection:
    """An autocommit SQL connection. ``first``: the reader's first connection, whose failure
    is reported as a configuration error (unreachable host, bad credentials, no database)."""
    try:
        return psycopg.connect(dsn, autocommit=True, options=SESSION_OPTIONS, connect_timeout=timeout)
    except psycopg.OperationalError as exc:
        if first:
            raise ConfigError(f"cdc.dsn: cannot connect to the source database: {_first_line(exc)}") from None
        raise


def connect_replication(dsn: str, *, first: bool = False) -> psycopg2.extras.LogicalReplicationConnection:
    """A logical replication connection (walsender) to the database of ``dsn``."""
    try:
        conn = psycopg2.connect(
            dsn,
            connection_factory=psycopg2.extras.LogicalReplicationConnection,
            options=SESSION_OPTIONS,
            connect_timeout=10,
        )
    except psycopg2.OperationalError as exc:
        message = _first_line(exc)
        if "replication" in message and ("permission" in message or "must be" in message):
            raise ConfigError(
                f"cdc.dsn: the user may not start logical replication ({message}); grant it REPLICATION "
                "(ALTER ROLE … REPLICATION), or rds_replication on RDS/Aurora"
            ) from None
        if first:
            raise ConfigError(f"cdc.dsn: cannot open a replication connection: {message}") from None
        raise
    assert isinstance(conn, psycopg2.extras.LogicalReplicationConnection)
    return conn


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_server(conn: SqlConnection) -> None:
    """Refuse, with what to change, a server or user that cannot do logical replication."""
    row = conn.execute(
        "SELECT current_setting('wal_level'), current_setting('server_version_num')::int"
    ).fetchone()
    assert row is not None
    wal_level, version = row
    if version < 100000:
        raise ConfigError(
            f"the source runs PostgreSQL {version}; logical replication with pgoutput needs 10 or later"
        )
    if wal_level != "logical":
        raise ConfigError(
            f"the source database has wal_level = {wal_level}: logical decoding needs wal_level = logical "
            "(ALTER SYSTEM SET wal_level = logical and a restart; rds.logical_replication = 1 on RDS/Aurora)"
        )
    allowed = conn.execute(
        "SELECT r.rolsuper OR r.rolreplication OR EXISTS ("
        " SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication'"
        "   AND pg_has_role(current_user, g.oid, 'member'))"
        " FROM pg_roles r WHERE r.rolname = current_user"
    ).fetchone()
    if not allowed or not allowed[0]:
        user = conn.info.user
        raise ConfigError(
            f"cdc.dsn: user {user!r} has no REPLICATION privilege: ALTER ROLE {user} REPLICATION "
            "(GRANT rds_replication TO … on RDS/Aurora)"
        )


def ensure_publication(conn: SqlConnection, name: str, tables: list[str]) -> None:
    """Create publication ``name`` if missing: for ``tables`` (``schema.table``), or every table
    of schema ``public`` (present and future, on PostgreSQL 15+). An existing one is used as is."""
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
        return
    ident = psycopg.sql.Identifier
    if tables:
        targets = psycopg.sql.SQL(", ").join(ident(*_split(t)) for t in tables)
        statement = psycopg.sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(ident(name), targets)
    elif conn.info.server_version >= 150000:
        statement = psycopg.sql.SQL("CREATE PUBLICATION {} FOR TABLES IN SCHEMA public").format(ident(name))
    else:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
        if not rows:
            raise ConfigError("cdc.tables is empty and schema public has no tables to publish")
        targets = psycopg.sql.SQL(", ").join(ident("public", r[0]) for r in rows)
        statement = psycopg.sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(ident(name), targets)
    try:
        conn.execute(statement)
    except psycopg.errors.UndefinedTable as exc:
        raise ConfigError(f"cdc.tables: {_first_line(exc)}") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ConfigError(f"cannot create publication {name!r}: {_first_line(exc)}") from None


def _split(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return schema or "public", name


def publication_tables(conn: SqlConnection, publication: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s ORDER BY 1, 2",
        (publication,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


@dataclass(frozen=True)
class SlotInfo:
    plugin: str | None
    database: str | None
    active_pid: int | None
    confirmed_lsn: int | None
    restart_lsn: int | None
    current_lsn: int
    wal_status: str | None

    @property
    def lag_bytes(self) -> int | None:
        return None if self.confirmed_lsn is None else max(self.current_lsn - self.confirmed_lsn, 0)

    @property
    def retained_bytes(self) -> int | None:
        return None if self.restart_lsn is None else max(self.current_lsn - self.restart_lsn, 0)


def slot_info(conn: SqlConnection, slot: str) -> SlotInfo | None:
    """The slot named ``slot``, or None when it does not exist."""
    current = "pg_last_wal_receive_lsn()" if _in_recovery(conn) else "pg_current_wal_lsn()"
    row = conn.execute(
        f"SELECT plugin, database, active_pid, confirmed_flush_lsn::text, restart_lsn::text, {current}::text,"
        " wal_status FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    if row is None:
        return None
    return SlotInfo(
        row[0],
        row[1],
        row[2],
        parse_lsn(row[3]) if row[3] else None,
        parse_lsn(row[4]) if row[4] else None,
        parse_lsn(row[5]),
        row[6],
    )


def _in_recovery(conn: SqlConnection) -> bool:
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def drop_slot(conn: SqlConnection, slot: str) -> None:
    """Drop ``slot``; a slot still in use (a reader's connection not yet gone) is transient."""
    try:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    except psycopg.errors.ObjectInUse as exc:
        raise TransientError(f"replication slot {slot!r} is still active: {_first_line(exc)}") from None
    except psycopg.errors.UndefinedObject:
        pass


@dataclass(frozen=True)
class CreatedSlot:
    consistent_lsn: int
    snapshot_name: str


def create_slot(cursor: psycopg2.extras.ReplicationCursor, slot: str) -> CreatedSlot:
    """Create a pgoutput slot on a replication connection, exporting its snapshot: valid until
    the next command on that connection, for ``SET TRANSACTION SNAPSHOT`` elsewhere."""
    try:
        name = psycopg2.extensions.quote_ident(slot, cursor)
        cursor.execute(f"CREATE_REPLICATION_SLOT {name} LOGICAL pgoutput EXPORT_SNAPSHOT")
    except psycopg2.errors.DuplicateObject as exc:
        raise TransientError(
            f"replication slot {slot!r} appeared while creating it: {_first_line(exc)}"
        ) from None
    row = cursor.fetchone()
    if row is None:
        raise TerminalError(f"CREATE_REPLICATION_SLOT {slot} returned nothing")
    return CreatedSlot(parse_lsn(row[1]), row[2])


def identify_system(cursor: psycopg2.extras.ReplicationCursor) -> tuple[str, str]:
    """(system identifier, database name) of the server behind a replication connection."""
    cursor.execute("IDENTIFY_SYSTEM")
    row = cursor.fetchone()
    if row is None:
        raise TerminalError("IDENTIFY_SYSTEM returned nothing")
    return str(row[0]), str(row[3])


class TypeNames:
    """(type OID, typmod) → ``format_type``, cached (asked once per type, not per row)."""

    def __init__(self, conn: SqlConnection) -> None:
        self.conn = conn
        self._cache: dict[tuple[int, int], str] = {}

    def __call__(self, oid: int, typmod: int) -> str:
        key = (oid, typmod)
        name = self._cache.get(key)
        if name is None:
            row = self.conn.execute(
                "SELECT format_type(%s, %s)", (oid, typmod if typmod >= 0 else None)
            ).fetchone()
            name = str(row[0]) if row and row[0] else str(oid)
            self._cache[key] = name
        return name
