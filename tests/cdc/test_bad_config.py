"""Bad input and configuration stop the reader with one clear line and a non-zero exit,
never a traceback: an unreachable database, a user without REPLICATION, a server without
wal_level = logical."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest
from cdc_kit import cli, reader_env  # type: ignore[import-not-found]

from insightloop.cdc.appdb import server
from insightloop.config import Config


def _run_reader(config: Config, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli("cdc", "reader"), env=reader_env(config, dsn), capture_output=True, text=True, timeout=120
    )


def _assert_clear_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in result.stderr, result.stderr


def test_unreachable_database(config: Config, unused_port: int) -> None:
    dsn = f"host=127.0.0.1 port={unused_port} dbname=app user=postgres connect_timeout=3"
    _assert_clear_failure(_run_reader(config, dsn), "cdc.dsn", "cannot connect")


def test_user_without_replication_privilege(config: Config, dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS cdc_plain")
        conn.execute("CREATE ROLE cdc_plain LOGIN")
    plain = dsn.replace("user=postgres", "user=cdc_plain")
    _assert_clear_failure(_run_reader(config, plain), "REPLICATION", "cdc_plain")


def test_server_without_logical_wal_level(config: Config, tmp_path: Path) -> None:
    pgdata = tmp_path / "replica-level"
    dsn = server.start(pgdata, settings={"wal_level": "replica"})
    try:
        _assert_clear_failure(_run_reader(config, dsn), "wal_level = logical")
    finally:
        server.stop(pgdata)


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
