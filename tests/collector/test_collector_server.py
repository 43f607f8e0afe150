"""The collector as it runs in production: ``serve(config)`` in its own process, uvicorn and
the durable local log. Unchanged Segment and RudderStack SDKs deliver; what was acknowledged
survives kill -9; a gzip bomb does not grow the server's memory."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from collector_kit import basic, gzip_bomb, stored, wait_until

import insightloop
from insightloop.config import Config, load_config
from insightloop.log.local import LocalLog

SERVE = "from insightloop.collector import serve; from insightloop.config import load_config as l; serve(l())"


class Collector:
    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        src = str(Path(insightloop.__file__).parents[1])
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
            "INSIGHTLOOP_DATA_DIR": str(data_dir),
            "INSIGHTLOOP__COLLECTOR__PORT": str(self.port),
        }
        self.config: Config = load_config(environ=self.env)
        self.write_key = next(
            k for k, source in self.config.source_for_write_key().items() if source == "web"
        )
        self.output = data_dir / "collector.out"
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVE], env=self.env, stdout=out, stderr=out
            )
        wait_until(self.healthy, "the collector to answer /health", timeout=60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"collector exited: {self.output.read_text(errors='replace')[-2000:]}")
        try:
            return self.request("GET", "/health")[0] == 200
        except OSError:
            return False

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One request; an iterator body goes out chunked, without Content-Length."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            chunked = body is not None and not isinstance(body, bytes)
            conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def peak_rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def read_log(self) -> LocalLog:
        settings = self.config.log
        return LocalLog(self.config.path("log"), settings.shards, settings.segment_bytes, True, 24)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    running = Collector(tmp_path / "data")
    try:
        yield running
    finally:
        running.kill()


def test_sdk_events_acknowledged_before_kill_9_are_in_the_log(collector: Collector) -> None:
    from rudderstack.analytics.client import Client as RudderClient
    from segment.analytics.client import Client as SegmentClient

    errors: list[Exception] = []
    for gzip in (True, False):
        segment = SegmentClient(
            write_key=collector.write_key,
            host=collector.url,
            gzip=gzip,
            sync_mode=True,
            max_retries=0,
            on_error=lambda error, _batch: errors.append(error),
        )
        segment.track(
            user_id="u1", event="Report Created", properties={"n": 1}, message_id=f"seg-track-{gzip}"
        )
        segment.identify(user_id="u1", traits={"email": "ada@example.com"}, message_id=f"seg-identify-{gzip}")
    rudder = RudderClient(write_key=collector.write_key, host=collector.url, sync_mode=True, max_retries=0)
    rudder.page(user_id="u2", name="Pricing", properties={"url": "https://x.test/p"}, message_id="rs-page")
    assert errors == []

    collector.kill()

    log = collector.read_log()
    try:
        records = stored(log)
    finally:
        log.close()
    events = {e.message_id: e.type for r in records for e in r.events}
    assert events == {
        "seg-track-True": "track",
        "seg-identify-True": "identify",
        "seg-track-False": "track",
        "seg-identify-False": "identify",
        "rs-page": "page",
    }
    assert {r.source for r in records} == {"web"}
    assert all(r.rejected == [] for r in records)


def test_gzip_bomb_does_not_grow_the_server(collector: Collector) -> None:
    bomb = gzip_bomb(1024)  # 1 GB of zeros in about 1 MB
    before = collector.peak_rss_kb()
    chunks = (bomb[i : i + 64 * 1024] for i in range(0, len(bomb), 64 * 1024))
    headers = {**basic(collector.write_key), "Content-Encoding": "gzip"}

    status, _ = collector.request("POST", "/v1/batch", chunks, headers)

    assert status == 413
    assert collector.peak_rss_kb() - before < 50 * 1024
    assert collector.request("GET", "/health")[0] == 200


def test_wrong_key_is_401_over_http(collector: Collector) -> None:
    status, body = collector.request("POST", "/v1/track", b'{"userId":"u","event":"E"}', basic("nope"))
    assert status == 401
    assert b'"success":false' in body
