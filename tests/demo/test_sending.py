"""Sending demo traffic over HTTP: Basic auth, gzip, 429 + Retry-After, and the accounting."""

from __future__ import annotations

import base64
import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from insightloop.demo.driver import TrafficRun
from insightloop.demo.sender import Sender
from insightloop.demo.traffic import Traffic


@dataclass
class FakeCollector:
    """Answers 429 (Retry-After: 3) to the first ``throttle`` requests, then 200."""

    throttle: int = 0
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.headers["Content-Encoding"] == "gzip"
                with fake.lock:
                    throttled = fake.throttle > 0
                    if throttled:
                        fake.throttle -= 1
                    else:
                        fake.requests.append((self.headers["Authorization"], gzip.decompress(body)))
                self.send_response(429 if throttled else 200)
                if throttled:
                    self.send_header("Retry-After", "3")
                reply = b'{"success": true}'
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    fake = FakeCollector()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def test_sender_waits_out_429_and_sends_the_same_body(collector: FakeCollector) -> None:
    collector.throttle = 2
    waits: list[float] = []
    sender = Sender(collector.url, sleep=waits.append)
    body = gzip.compress(b'{"batch": []}')
    try:
        outcome = sender.send("my-write-key", body)
    finally:
        sender.close()

    assert outcome.status == 200
    assert outcome.throttled == 2
    assert waits == [3.0, 3.0]
    assert collector.requests == [("Basic " + base64.b64encode(b"my-write-key:").decode(), b'{"batch": []}')]


def test_sender_reports_an_unreachable_collector() -> None:
    sender = Sender("http://127.0.0.1:9", max_attempts=2, sleep=lambda _: None)
    outcome = sender.send("k", b"")
    assert outcome.status is None
    assert outcome.error is not None


def test_traffic_run_counts_what_the_collector_accepted(collector: FakeCollector) -> None:
    run = TrafficRun(Traffic("web-key", "mobile-key", seed=3), collector.url, rate=20_000, duration=0.3)
    run.run()
    stats = run.stats

    bodies = [orjson.loads(body)["batch"] for _, body in collector.requests]
    assert stats.requests_ok == len(bodies) > 0
    assert stats.events_accepted == sum(len(b) for b in bodies)
    valid_ids = [e["messageId"] for b in bodies for e in b if "userId" in e or "anonymousId" in e]
    assert stats.valid_sent == len(valid_ids)
    assert stats.valid_distinct == len(set(valid_ids))
    assert stats.retried_copies == len(valid_ids) - len(set(valid_ids))
    assert set(stats.markers) <= set(valid_ids)
