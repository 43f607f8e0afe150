"""``insightloop up``: the pipeline's services (collector, processor, cleaner, CDC reader and
processor) as supervised child processes."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from insightloop.cli.services import COMMANDS, SERVICES
from insightloop.cli.supervisor import ChildSpec, LogSink
from insightloop.config import Config

_STYLES = {
    "collector": "cyan",
    "processor": "magenta",
    "cleaner": "green",
    "cdc-reader": "blue",
    "cdc-processor": "bright_magenta",
    "file-loader": "bright_cyan",
    "supervisor": "bold yellow",
}


def service_children(
    config_path: Path | None, env: Mapping[str, str] | None = None, *, names: Sequence[str] = SERVICES
) -> list[ChildSpec]:
    """One child per service of ``names`` (``services.pipeline_services``), running this same
    Python and package: ``python -m insightloop``."""
    options = ["--config", str(config_path)] if config_path is not None else []
    command = [sys.executable, "-m", "insightloop", *options]
    return [ChildSpec(name, [*command, *COMMANDS[name]], env) for name in names]


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (another collector, say)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def collector_url(config: Config) -> str:
    host = config.collector.host
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return f"http://{host}:{config.collector.port}"


def console_sink(console: Console) -> LogSink:
    """Print each line prefixed with its child's name, one line at a time."""
    lock = threading.Lock()
    width = max(len(name) for name in (*SERVICES, "supervisor"))

    def sink(name: str, line: str) -> None:
        style = _STYLES.get(name, "bold")
        with lock:
            console.print(f"[{style}]{name:>{width}} |[/] {escape(line)}", highlight=False, soft_wrap=True)

    return sink
