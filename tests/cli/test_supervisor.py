"""The supervisor behind ``insightloop up``, tested with tiny fake children."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from insightloop.cli.supervisor import ChildSpec, Policy, Supervisor

FAST = Policy(
    backoff_initial=0.01, backoff_max=0.05, max_restarts=3, stable_after=60, stop_grace=5, poll_interval=0.02
)

# Crashes (exit 1) on its first `crashes` runs, then stays up; counts runs in a file.
CRASHY = """
import pathlib, sys, time
counter, crashes = pathlib.Path(sys.argv[1]), int(sys.argv[2])
run = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(run))
print(f"run {run}", flush=True)
if run <= crashes:
    sys.exit(1)
print("steady", flush=True)
while True:
    time.sleep(0.05)
"""


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.changed = threading.Condition()

    def __call__(self, name: str, line: str) -> None:
        with self.changed:
            self.lines.append((name, line))
            self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: any(text in line for _, line in self.lines), timeout):
                raise AssertionError(f"never saw {text!r} in {self.lines}")

    def of(self, name: str) -> list[str]:
        return [line for who, line in self.lines if who == name]


def crashy(tmp_path: Path, crashes: int) -> ChildSpec:
    script = tmp_path / "crashy.py"
    script.write_text(CRASHY)
    return ChildSpec("crashy", [sys.executable, str(script), str(tmp_path / "runs"), str(crashes)])


def test_restarts_a_crashed_child_and_stops_it_cleanly(tmp_path: Path) -> None:
    lines = Lines()
    supervisor = Supervisor([crashy(tmp_path, crashes=2)], lines, FAST)
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run(stop)))
    thread.start()
    try:
        lines.wait_for("steady")
    finally:
        stop.set()
        thread.join(timeout=30)

    assert result == [0]
    assert lines.of("crashy") == ["run 1", "run 2", "run 3", "steady"]
    restarts = [line for line in lines.of("supervisor") if "restarting" in line]
    assert len(restarts) == 2
    assert "exited with code 1" in restarts[0]
    assert supervisor.restarts == {"crashy": 2}
    assert any("crashy stopped" in line for line in lines.of("supervisor"))


def test_gives_up_on_a_child_that_keeps_crashing(tmp_path: Path) -> None:
    lines = Lines()
    other = ChildSpec(
        "steady", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    )
    code = Supervisor([crashy(tmp_path, crashes=1000), other], lines, FAST).run(threading.Event())

    assert code == 1
    assert lines.of("crashy") == ["run 1", "run 2", "run 3", "run 4"]  # first run + max_restarts
    assert any("giving up" in line for line in lines.of("supervisor"))
    assert any("steady stopped" in line for line in lines.of("supervisor"))


def test_bad_config_is_not_restarted(tmp_path: Path) -> None:
    lines = Lines()
    child = ChildSpec("bad", [sys.executable, "-c", "import sys; print('bad config'); sys.exit(2)"])
    code = Supervisor([child], lines, FAST).run(threading.Event())

    assert code == 2
    assert lines.of("bad") == ["bad config"]
    assert any("not restarting" in line for line in lines.of("supervisor"))


# Two children: one stops on SIGTERM, one ignores it and must be killed after the grace period.
SUPERVISED = """
import sys
from insightloop.cli.supervisor import ChildSpec, Policy, supervise

polite = '''
import os, signal, sys, time
def bye(signum, frame):
    print("polite got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print(f"ready {os.getpid()}", flush=True)
while True:
    time.sleep(0.05)
'''
stubborn = '''
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(f"ready {os.getpid()}", flush=True)
while True:
    time.sleep(0.05)
'''
children = [
    ChildSpec("polite", [sys.executable, "-c", polite]),
    ChildSpec("stubborn", [sys.executable, "-c", stubborn]),
]
def sink(name, line):
    # One write per line: print() writes text and newline separately, and the two children's
    # reader threads could interleave them on one line.
    sys.stdout.write(f"{name} | {line}\\n")
    sys.stdout.flush()
sys.exit(supervise(children, sink, Policy(stop_grace=1.0, poll_interval=0.02)))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_stops_every_child_then_exits_0(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SUPERVISED)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    pids: list[int] = []
    output: list[str] = []
    try:
        for line in process.stdout:
            output.append(line)
            pids.extend(int(pid) for pid in re.findall(r"\| ready (\d+)", line))
            if len(pids) == 2:
                break
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    output.append(rest)
    text = "".join(output)

    assert process.returncode == 0, text
    assert "polite got SIGTERM" in text
    assert "stubborn did not stop in 1 s: killing" in text
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids), "children left running"


@pytest.mark.parametrize("name", ["collector", "processor"])
def test_up_runs_each_service_with_this_python(name: str) -> None:
    from insightloop.cli.up import service_children

    specs = {spec.name: spec for spec in service_children(Path("/etc/insightloop.toml"))}
    assert specs[name].argv == [
        sys.executable,
        "-m",
        "insightloop",
        "--config",
        "/etc/insightloop.toml",
        name,
    ]
