"""Services started by a supervisor leave a pid file, and stop when the supervisor dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from insightloop.config import Config

# A fake supervisor: starts one "service" that marks itself running, prints its pid, waits.
SUPERVISOR = """
import os, subprocess, sys, time
service = '''
import time
from insightloop.cli.services import service_running
from insightloop.config import load_config
with service_running(load_config(), "processor"):
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
'''
env = {**os.environ, "INSIGHTLOOP_SUPERVISOR_PID": str(os.getpid())}
child = subprocess.Popen([sys.executable, "-c", service], env=env, stdout=subprocess.PIPE, text=True)
assert child.stdout.readline() == "ready\\n"
print(child.pid, flush=True)
time.sleep(120)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_service_stops_when_its_supervisor_is_killed(config: Config) -> None:
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE, text=True)
    assert supervisor.stdout is not None
    try:
        service_pid = int(supervisor.stdout.readline())
        assert config.path("run", "processor.pid").read_text().strip() == str(service_pid)
        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait()
        deadline = time.monotonic() + 20
        while running(service_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(service_pid), "the service outlived its supervisor"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
