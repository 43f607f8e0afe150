"""LocalLog across processes: one writer per shard, live readers, and kill -9."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import insightloop
from insightloop.errors import LogBusyError
from insightloop.log.local import LocalLog

SHARD = "shard-0"
OPEN = "import sys; from pathlib import Path; from insightloop.log.local import LocalLog\n" + (
    "log = LocalLog(Path(sys.argv[1]), shards=1, segment_bytes=32_768, fsync=True, retention_hours=0)\n"
)


def spawn(code: str, root: Path) -> subprocess.Popen[str]:
    """A Python child running ``code`` with ``log`` opened on ``root``."""
    src = str(Path(insightloop.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-c", OPEN + textwrap.dedent(code), str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def open_log(root: Path) -> LocalLog:
    return LocalLog(root, shards=1, segment_bytes=32_768, fsync=True, retention_hours=0)


TRY_APPEND = """
    try:
        print("appended at", log.append("shard-0", [b"from the child"])[0].offset)
    except Exception as exc:
        print(type(exc).__name__, exc)
"""


def test_a_second_writer_process_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(SHARD, [b"from the parent"])

    refused, _ = spawn(TRY_APPEND, tmp_path).communicate(timeout=60)
    log.close()
    allowed, _ = spawn(TRY_APPEND, tmp_path).communicate(timeout=60)

    assert refused.startswith(LogBusyError.__name__)
    assert "shard-0" in refused
    assert str(tmp_path / SHARD / "writer.lock") in refused
    assert allowed.strip() == "appended at 1"


FOLLOW = """
    print("reading", flush=True)
    last, seen = None, []
    while len(seen) < 30:
        got = log.read("shard-0", last)
        if got:
            seen += [r.data.decode() for r in got]
            last = got[-1].position.offset
    print(" ".join(seen))
"""


def test_a_reader_process_sees_records_appended_after_it_started(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    reader = spawn(FOLLOW, tmp_path)
    assert reader.stdout is not None
    assert reader.stdout.readline() == "reading\n"

    for start in range(0, 30, 3):
        log.append(SHARD, [f"r{n}".encode() * 500 for n in range(start, start + 3)])  # rolls segments
    out, err = reader.communicate(timeout=60)
    log.close()

    assert out.split() == [f"r{n}" * 500 for n in range(30)], err


APPEND_FOREVER = """
    import random
    n = log.lag("shard-0", None).records  # records are numbered by the offset they should get
    while True:
        batch = [f"{n + i}:".encode() * random.randint(1, 300) for i in range(random.randint(1, 40))]
        positions = log.append("shard-0", batch)
        sys.stdout.write("".join(f"{p.offset}\\n" for p in positions))
        sys.stdout.flush()
        n += len(batch)
"""


def kill_while_appending(root: Path, rng: random.Random) -> list[int]:
    """Run an appending child, SIGKILL it at a random moment; the offsets it acknowledged."""
    child = spawn(APPEND_FOREVER, root)
    assert child.stdout is not None
    acked: list[int] = []
    target = rng.randint(1, 1500)
    while len(acked) < target:
        line = child.stdout.readline()
        assert line, f"the appending child died: {child.communicate()[1]}"
        acked.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate(timeout=60)
    acked += [int(line) for line in rest.splitlines(keepends=True) if line.endswith("\n")]
    assert child.returncode == -signal.SIGKILL
    return acked


def test_kill_9_loses_no_acknowledged_record(tmp_path: Path) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    acked: list[int] = []
    for _ in range(3):  # each round starts by recovering what the previous one left
        acked += kill_while_appending(tmp_path, rng)

        log = open_log(tmp_path)
        stored = log.read(SHARD, None, max_records=1_000_000)
        offsets = [r.position.offset for r in stored]
        assert offsets == list(range(len(stored))), f"seed {seed}"
        assert set(acked) <= set(offsets), f"seed {seed}"
        for r in stored:  # intact: each record repeats its own offset
            number, *more = r.data.decode().split(":")
            assert int(number) == r.position.offset and more == [number] * (len(more) - 1) + [""]
        end = log.append(SHARD, [f"{len(stored)}:".encode()])[0].offset
        assert end == len(stored), f"seed {seed}"
        assert log.read(SHARD, end - 1)[0].data == f"{end}:".encode()
        log.close()
