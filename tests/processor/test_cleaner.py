"""The cleaner: stage 2 in its own process makes the same cleaned tables as an inline
processor, survives kill -9 exactly once, and runs once per lake and only in separate mode."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cleaned.cleaned_support import contents
from processor_support import record, track
from pyiceberg.exceptions import NoSuchTableError

import insightloop
from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.log import Log
from insightloop.log.factory import open_log
from insightloop.processor.cleaner import build_cleaner
from insightloop.processor.runner import build_processor


def environment(data_dir: Path, **settings: str) -> dict[str, str]:
    src = str(Path(insightloop.__file__).parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
        "INSIGHTLOOP_DATA_DIR": str(data_dir),
        "INSIGHTLOOP__LOG__SHARDS": "2",
        "INSIGHTLOOP__LOG__FSYNC": "false",
        "INSIGHTLOOP__PROCESSOR__MAX_BATCH_EVENTS": "40",
        "INSIGHTLOOP__PROCESSOR__MAX_BATCH_SECONDS": "0.2",
        "INSIGHTLOOP__PROCESSOR__COMPACT_MIN_FILES": "4",
        # Its events are arbitrary: the repository's contracts are off.
        "INSIGHTLOOP__CONTRACTS__MODE": "off",
    }
    env.pop("INSIGHTLOOP_CONFIG", None)
    env.pop("INSIGHTLOOP__PROCESSOR__STAGE2", None)
    env.update({f"INSIGHTLOOP__PROCESSOR__{key.upper()}": value for key, value in settings.items()})
    return env


def traffic(rng: random.Random, batches: int) -> list[tuple[int, list[dict[str, Any]]]]:
    """(shard index, events) per log record: tracks of a few event names, identifies,
    SDK retries (ids sent again) and malformed events."""
    out: list[tuple[int, list[dict[str, Any]]]] = []
    sent: list[str] = []
    for b in range(batches):
        events: list[dict[str, Any]] = []
        for i in range(rng.randint(1, 12)):
            roll = rng.random()
            if roll < 0.1 and sent:
                events.append(track(rng.choice(sent), event="Report Created", properties={"retry": True}))
            elif roll < 0.2:
                events.append(
                    {
                        "type": "identify",
                        "messageId": f"id-{b}-{i}",
                        "userId": f"u{b % 5}",
                        "traits": {"plan": b},
                    }
                )
            elif roll < 0.25:
                events.append(
                    {"type": "track", "messageId": f"bad-{b}-{i}", "event": 7}
                )  # event not a string
            else:
                mid = f"m-{b}-{i}"
                name = rng.choice(["Report Created", "Invite Sent", "Page Shared"])
                events.append(track(mid, event=name, properties={"n": i, "tag": f"t{b % 3}"}))
                sent.append(mid)
        out.append((rng.randrange(2), events))
    return out


def append(log: Log, records: list[tuple[int, list[dict[str, Any]]]]) -> None:
    shards = log.shards()
    for shard, events in records:
        log.append(shards[shard], [record(events)])


def test_the_cleaner_makes_what_an_inline_processor_makes(tmp_path: Path) -> None:
    """Including when raw is compacted while the cleaner follows it."""
    records = traffic(random.Random(11), 60)

    inline = load_config(environ=environment(tmp_path / "inline", stage2="inline"))
    log = open_log(inline)
    append(log, records)
    catalog = open_catalog(inline)
    processor = build_processor(inline, log, catalog)
    while processor.step():
        pass
    log.close()
    expected = contents(catalog)
    assert expected["cleaned.tracks"], "the inline run made cleaned rows"

    # The same log (so the same raw batches and order); stage 1 runs alone for a while, then
    # the cleaner catches up from raw and follows it, a turn per raw commit or so.
    separate = load_config(environ=environment(tmp_path / "separate"))
    log = open_log(separate)
    append(log, records)
    catalog = open_catalog(separate)
    processor = build_processor(separate, log, catalog)
    for _ in range(3):
        assert processor.step()
    assert contents(catalog) == {}, "a stage-1-only processor writes raw only"
    cleaner = build_cleaner(separate, catalog)
    assert cleaner.step()
    turn = 0
    while processor.step():
        turn += 1
        if turn % 3 == 0:  # raw's small files rewritten between the cleaner's reads
            assert processor.compactor is not None
            processor.compactor.compact_all()
        cleaner.step()
    while cleaner.step():
        pass
    log.close()
    assert contents(catalog) == expected


CHILD = "from insightloop.config import load_config\nfrom {module} import run\nrun(load_config())\n"


def start(env: dict[str, str], module: str, out: Path) -> subprocess.Popen[bytes]:
    with out.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD.format(module=module)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def cleaned_ids(config: Config) -> list[str]:
    try:
        table = open_catalog(config).load_table("cleaned.tracks")
    except NoSuchTableError:
        return []
    return list(table.scan(selected_fields=("id",)).to_arrow()["id"].to_pylist())


@pytest.mark.slow
def test_kill_9_of_the_cleaner_leaves_every_event_cleaned_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    env = environment(tmp_path / "data")
    config = load_config(environ=env)
    out = tmp_path / "services.out"
    log = open_log(config)
    expected: set[str] = set()
    batch = 0

    def append_some(count: int) -> None:
        nonlocal batch
        for _ in range(count):
            events = [track(f"k-{batch}-{i}") for i in range(rng.randint(1, 8))]
            if expected and rng.random() < 0.2:  # an SDK retry: ids already sent
                events.append(track(rng.choice(sorted(expected))))
            expected.update(e["messageId"] for e in events)
            log.append(rng.choice(log.shards()), [record(events)])
            batch += 1

    processor = start(env, "insightloop.processor.runner", out)
    cleaner = start(env, "insightloop.processor.cleaner", out)
    try:
        for _ in range(5):
            deadline = time.monotonic() + rng.uniform(0.5, 3.0)
            while time.monotonic() < deadline:
                append_some(rng.randint(1, 10))
                time.sleep(rng.uniform(0.0, 0.05))
            cleaner.send_signal(signal.SIGKILL)
            cleaner.wait()
            cleaner = start(env, "insightloop.processor.cleaner", out)
        append_some(30)
        deadline = time.monotonic() + 120
        while len(cleaned_ids(config)) < len(expected):
            assert cleaner.poll() is None and processor.poll() is None, out.read_text()[-3000:]
            assert time.monotonic() < deadline, "the restarted cleaner did not catch up"
            time.sleep(0.2)
        time.sleep(0.5)  # anything still in flight would show up as a duplicate
        for child in (cleaner, processor):
            child.send_signal(signal.SIGTERM)
            assert child.wait(60) == 0, out.read_text()[-3000:]
    finally:
        log.close()
        for child in (cleaner, processor):
            if child.poll() is None:
                child.kill()
    ids = cleaned_ids(config)
    assert len(ids) == len(set(ids)), "an event was cleaned twice"
    assert set(ids) == expected


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "insightloop", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_second_cleaner_is_refused(tmp_path: Path) -> None:
    env = environment(tmp_path / "data")
    config = load_config(environ=env)
    out = tmp_path / "cleaner.out"
    with out.open("ab") as sink:
        first = subprocess.Popen(
            [sys.executable, "-m", "insightloop", "cleaner"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "cleaner resuming" not in out.read_text():
            assert first.poll() is None, out.read_text()
            assert time.monotonic() < deadline, "the first cleaner did not start"
            time.sleep(0.1)
        second = cli(env, "cleaner")
        assert second.returncode == 1
        assert "another cleaner holds" in second.stderr
        assert first.poll() is None, "the first cleaner keeps running"
        status = cli(env, "status", "--json")
        assert '"name": "cleaner",\n      "up": true' in status.stdout
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0, out.read_text()
    finally:
        if first.poll() is None:
            first.kill()
    assert not config.path("run", "cleaner.pid").exists()


def test_inline_mode_refuses_the_cleaner(tmp_path: Path) -> None:
    result = cli(environment(tmp_path / "data", stage2="inline"), "cleaner")
    assert result.returncode == 2
    assert "the processor runs stage 2 itself" in result.stderr


def test_an_unknown_stage2_mode_is_a_config_error(tmp_path: Path) -> None:
    result = cli(environment(tmp_path / "data", stage2="elsewhere"), "status")
    assert result.returncode == 2
    assert "processor.stage2" in result.stderr
