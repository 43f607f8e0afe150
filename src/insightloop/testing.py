"""Run the pipeline's services as separate child processes, for end-to-end tests and
benchmarks that need to kill one of them (kill -9) and start it again.

Production and the demo use ``insightloop up``; this is the same services, started one by
one so a caller can control each.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Services:
    """The collector, the processor and the cleaner of one data dir, each a child process."""

    def __init__(self, data_dir: Path, port: int | None = None, extra_env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "INSIGHTLOOP_DATA_DIR": str(data_dir),
            "INSIGHTLOOP__COLLECTOR__PORT": str(self.port),
            # The SDK path's services; pass INSIGHTLOOP__CDC__ENABLED=true (or
            # INSIGHTLOOP__EXPORTS__ENABLED=true) to add CDC's (the file loader).
            "INSIGHTLOOP__CDC__ENABLED": "false",
            "INSIGHTLOOP__EXPORTS__ENABLED": "false",
            **(extra_env or {}),
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, service: str) -> None:
        from insightloop.cli.services import COMMANDS

        log = (self.data_dir / f"{service}.out").open("ab")
        self.procs[service] = subprocess.Popen(
            [sys.executable, "-m", "insightloop", *COMMANDS[service]],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if service == "collector":
            self.wait_healthy()

    def pipeline(self) -> tuple[str, ...]:
        """The services ``insightloop up`` starts under this environment's config."""
        from insightloop.cli.services import pipeline_services
        from insightloop.config import load_config

        return pipeline_services(load_config(environ=self.env))

    def start_pipeline(self) -> None:
        """Every service of the pipeline, as ``insightloop up`` would start them."""
        for service in self.pipeline():
            self.start(service)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs["collector"]
            if proc.poll() is not None:
                raise RuntimeError(f"collector exited with {proc.returncode}: {self.output('collector')}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"collector not healthy after {timeout}s: {self.output('collector')}")

    def output(self, service: str) -> str:
        path = self.data_dir / f"{service}.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def kill(self, service: str) -> None:
        """kill -9, no chance to clean up."""
        proc = self.procs.pop(service)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self, service: str, timeout: float = 30.0) -> int:
        proc = self.procs.pop(service)
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise

    def stop_all(self) -> None:
        for service in list(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop(service)
