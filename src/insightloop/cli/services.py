"""Running one service in the foreground (``insightloop collector`` / ``processor`` / ``cleaner``).

Each running service leaves ``<data_dir>/run/<name>.pid`` for ``insightloop status``. Under a
supervisor (``SUPERVISOR_PID_ENV`` set) a service stops itself (SIGTERM to itself) when the
supervisor dies, so a killed supervisor leaves no orphans behind.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

from insightloop.cli.context import config_errors_exit, fail
from insightloop.cli.supervisor import SUPERVISOR_PID_ENV
from insightloop.config import Config
from insightloop.errors import InsightloopError

SDK_SERVICES = ("collector", "processor", "cleaner")
#: The CDC reader (``insightloop cdc reader``) and the CDC processor (``cdc-processor``).
CDC_SERVICES = ("cdc-reader", "cdc-processor")
#: The file loader (``insightloop loader``): batch export files from the landing zone.
EXPORT_SERVICES = ("file-loader",)
SERVICES = (*SDK_SERVICES, *CDC_SERVICES, *EXPORT_SERVICES)
#: The command line (after ``insightloop``) of each service.
COMMANDS: dict[str, tuple[str, ...]] = {
    "collector": ("collector",),
    "processor": ("processor",),
    "cleaner": ("cleaner",),
    "cdc-reader": ("cdc", "reader"),
    "cdc-processor": ("cdc-processor",),
    "file-loader": ("loader",),
}


def pipeline_services(config: Config) -> tuple[str, ...]:
    """The services that make up the pipeline of ``config``: no cleaner when the processor
    runs stage 2 itself (``processor.stage2 = "inline"``); the CDC reader and processor when
    ``cdc.enabled``; the file loader when ``exports.enabled``."""
    names = [name for name in SDK_SERVICES if name != "cleaner" or not config.processor.stage2_inline]
    if config.cdc.enabled:
        names.extend(CDC_SERVICES)
    if config.exports.enabled:
        names.extend(EXPORT_SERVICES)
    return tuple(names)


@contextmanager
def demo_sources(config: Config) -> Iterator[str | None]:
    """While inside: the embedded demo application database, when CDC is on and no
    ``cdc.dsn`` names a real one, started once here (not by each reader start) with its schema;
    yields its DSN (None when there is nothing to start). A server started here is stopped on
    the way out; one that was already running is left running."""
    if not config.cdc.enabled or config.cdc.dsn:
        yield None
        return
    import psycopg

    from insightloop.cdc.appdb.schema import create_schema
    from insightloop.cdc.appdb.server import appdb_dir, ensure_started, running_port, stop

    pgdata = appdb_dir(config)
    was_running = running_port(pgdata) is not None
    dsn = ensure_started(config)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            create_schema(conn)
        yield dsn
    finally:
        if not was_running:
            stop(pgdata)


def pid_file(config: Config, name: str) -> Path:
    return config.path("run", f"{name}.pid")


def running_pid(config: Config, name: str) -> int | None:
    """The pid of a running ``name`` service, from its pid file; None if it is not running."""
    try:
        pid = int(pid_file(config, name).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # exists, owned by another user
    return pid


@contextmanager
def service_running(config: Config, name: str) -> Iterator[None]:
    """Mark ``name`` as running (pid file) and watch the supervisor, if any, while inside."""
    path = pid_file(config, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A second copy (refused below by the lake's lock or the port) keeps the first one's file.
    if running_pid(config, name) in (None, os.getpid()):
        path.write_text(f"{os.getpid()}\n")
    _watch_parent()
    try:
        with config_errors_exit():
            yield
    except InsightloopError as exc:  # e.g. another processor holds the lake's lock
        raise fail(f"{name}: {exc}") from None
    finally:
        with suppress(OSError, ValueError):
            if int(path.read_text().strip()) == os.getpid():
                path.unlink()


def _watch_parent(interval: float = 1.0) -> None:
    expected = os.environ.get(SUPERVISOR_PID_ENV)
    if not expected or not expected.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(expected):
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_collector(config: Config) -> None:
    """Serve the Segment HTTP API until SIGINT/SIGTERM, then exit 0.

    uvicorn shuts down gracefully on either signal, restores the handlers it found and
    raises the signal again: ours turns it into a clean exit (pid file removed, code 0)."""
    from insightloop.collector.server import serve

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    with service_running(config, "collector"):
        serve(config)


def run_processor(config: Config) -> None:
    """Run the stream processor until SIGINT/SIGTERM, letting it finish its micro-batch."""
    from insightloop.processor.runner import run

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    with service_running(config, "processor"):
        run(config, stop=stop)


def run_cleaner(config: Config) -> None:
    """Run stage 2 (raw → cleaned) until SIGINT/SIGTERM, letting it finish the window in hand.

    Exits 2 when ``processor.stage2 = "inline"`` (the processor runs stage 2 itself)."""
    from insightloop.processor.cleaner import refuse_inline, run

    with config_errors_exit():
        refuse_inline(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    with service_running(config, "cleaner"):
        run(config, stop=stop)
