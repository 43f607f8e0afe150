"""A tiny process supervisor: run a few child processes, forward their output line by line,
restart a child that exits with back-off, and stop them all cleanly.

Not a scheduler: children are long-running services; any exit of a child is a crash, except
exit code 2 (bad config), which a restart cannot fix. A child that keeps crashing (more than
``max_restarts`` times without a stable run in between) makes the supervisor give up, stop
the others and report failure. Stopping sends SIGTERM to each child's process group, waits
``stop_grace`` seconds, then kills what is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

#: Exit code of a child that found its configuration bad: restarting cannot help.
CONFIG_EXIT_CODE = 2
#: Set in each child's environment: the child stops itself when its parent is no longer this pid.
SUPERVISOR_PID_ENV = "INSIGHTLOOP_SUPERVISOR_PID"

#: Where output goes: (child name or "supervisor", one line without its newline).
LogSink = Callable[[str, str], None]


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Policy:
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    #: Crashes in a row (each within ``stable_after`` of its start) tolerated before giving up.
    max_restarts: int = 5
    #: A run at least this long counts as stable: the crash count and back-off start over.
    stable_after: float = 30.0
    stop_grace: float = 10.0
    poll_interval: float = 0.1


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    started_at: float = 0.0
    crashes: int = 0
    restarts: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    children: Sequence[ChildSpec]
    log: LogSink
    policy: Policy = field(default_factory=Policy)
    _state: list[_Child] = field(init=False, default_factory=list)
    #: Total restarts so far, per child name (for progress displays).
    restarts: dict[str, int] = field(init=False, default_factory=dict)

    def run(self, stop: threading.Event) -> int:
        """Run until ``stop`` is set (→ 0), or a child keeps crashing (→ 1) or reports bad
        config (→ 2); in every case the children are stopped before returning."""
        self._state = [_Child(spec) for spec in self.children]
        code = 0
        try:
            for child in self._state:
                self._start(child)
            while not stop.wait(self.policy.poll_interval):
                failure = self._check()
                if failure is not None:
                    code = failure
                    break
        finally:
            self._stop_all()
        return code

    def _start(self, child: _Child) -> None:
        env = dict(os.environ if child.spec.env is None else child.spec.env)
        env[SUPERVISOR_PID_ENV] = str(os.getpid())
        env.setdefault("PYTHONUNBUFFERED", "1")
        process = subprocess.Popen(
            list(child.spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            # Its own process group: a terminal's Ctrl-C reaches only us; we forward SIGTERM.
            process_group=0,
        )
        assert process.stdout is not None
        child.process = process
        child.started_at = time.monotonic()
        child.restart_at = None
        child.reader = threading.Thread(
            target=self._forward, args=(child.spec.name, process.stdout), daemon=True
        )
        child.reader.start()
        self.log("supervisor", f"started {child.spec.name} (pid {process.pid})")

    def _forward(self, name: str, stream: IO[bytes]) -> None:
        with stream:
            for raw in stream:
                self.log(name, raw.decode("utf-8", "replace").rstrip("\r\n"))

    def _check(self) -> int | None:
        now = time.monotonic()
        for child in self._state:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self.restarts[child.spec.name] = child.restarts
                    self._start(child)
                continue
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                continue
            if child.reader is not None:
                child.reader.join(timeout=1.0)  # let its last lines out before ours
            name = child.spec.name
            if code == CONFIG_EXIT_CODE:
                self.log("supervisor", f"{name} exited with code {code} (bad config): not restarting")
                return CONFIG_EXIT_CODE
            ran = now - child.started_at
            child.crashes = 1 if ran >= self.policy.stable_after else child.crashes + 1
            if child.crashes > self.policy.max_restarts:
                self.log(
                    "supervisor",
                    f"{name} exited with code {code}; it crashed {child.crashes} times in a row: giving up",
                )
                return 1
            delay = min(self.policy.backoff_initial * 2 ** (child.crashes - 1), self.policy.backoff_max)
            self.log(
                "supervisor",
                f"{name} exited with code {code} after {ran:.1f} s; restarting in {delay:.1f} s "
                f"(crash {child.crashes} of at most {self.policy.max_restarts} in a row)",
            )
            child.restart_at = now + delay
        return None

    def _stop_all(self) -> None:
        running = [c for c in self._state if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            self.log("supervisor", f"stopping {child.spec.name} (SIGTERM)")
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.policy.stop_grace
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                self.log(
                    "supervisor", f"{child.spec.name} did not stop in {self.policy.stop_grace:.0f} s: killing"
                )
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        for child in self._state:
            if child.reader is not None:
                child.reader.join(timeout=1.0)
        for child in running:
            assert child.process is not None
            self.log("supervisor", f"{child.spec.name} stopped (exit code {child.process.returncode})")


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, sig)


def supervise(children: Sequence[ChildSpec], log: LogSink, policy: Policy | None = None) -> int:
    """Run a supervisor in the foreground until SIGINT or SIGTERM; returns its exit code.

    Call from the main thread (signal handlers are installed there)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return Supervisor(children, log, policy or Policy()).run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
