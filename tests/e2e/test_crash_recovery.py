"""kill -9 of the processor, the cleaner and the collector under load loses no acknowledged
event and doubles none (DESIGN guarantees 1 and 2)."""

from __future__ import annotations

import base64
import http.client
import random
import threading
import time

import orjson
import pyarrow.compute as pc
import pytest
from e2e_support import WRITE_KEY, read_table, wait_for

from insightloop.config import Config
from insightloop.testing import Services

pytestmark = pytest.mark.slow

AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


class Sender(threading.Thread):
    """Sends batches like an SDK: retries a batch (same messageIds) until it gets a 200."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.acked: list[str] = []
        self.stop = threading.Event()
        self.attempts = 0

    def body(self, batch: int) -> tuple[bytes, list[str]]:
        ids = [f"k-{batch}-{i}" for i in range(40)]
        events = [
            {
                "type": "track",
                "messageId": mid,
                "userId": f"u{batch % 7}",
                "event": "Invite Sent",
                "properties": {"batch": batch, "n": i, "role": "admin"},
                "timestamp": "2026-11-26T10:00:00Z",
            }
            for i, mid in enumerate(ids)
        ]
        return orjson.dumps({"batch": events, "sentAt": "2026-11-26T10:00:00Z"}), ids

    def run(self) -> None:
        batch = 0
        conn: http.client.HTTPConnection | None = None
        while not self.stop.is_set():
            body, ids = self.body(batch)
            for _ in range(200):  # an SDK's retries; give up on this batch after that
                self.attempts += 1
                try:
                    conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    conn.request(
                        "POST", "/v1/batch", body, {"Authorization": AUTH, "Content-Type": "application/json"}
                    )
                    response = conn.getresponse()
                    response.read()
                    if response.status == 200:
                        self.acked.extend(ids)
                        break
                except OSError:
                    conn = None
                time.sleep(0.05)
            batch += 1


def test_kill_9_of_every_service_loses_and_doubles_nothing(services: Services, config: Config) -> None:
    rng = random.Random(7)
    services.start_pipeline()
    # The cleaner only in separate mode (the default); inline, the processor runs stage 2.
    stage2 = [name for name in services.pipeline() if name == "cleaner"]
    sender = Sender(services.port)
    sender.start()
    try:
        wait_for(lambda: len(sender.acked) > 0, 30, "first acknowledgements")
        for victim in ["processor", *stage2, "processor", *stage2, *stage2]:
            time.sleep(rng.uniform(0.5, 3.0))
            services.kill(victim)
            time.sleep(rng.uniform(0.0, 1.0))
            services.start(victim)
        time.sleep(rng.uniform(0.5, 2.0))
        services.kill("collector")
        services.start("collector")
        acked_before = len(sender.acked)
        wait_for(lambda: len(sender.acked) > acked_before, 60, "acknowledgements after collector restart")
        time.sleep(rng.uniform(1.0, 3.0))
        for victim in ["processor", *stage2]:  # both at once
            services.kill(victim)
        for victim in ["processor", *stage2]:
            services.start(victim)
        time.sleep(1.0)
    finally:
        sender.stop.set()
        sender.join(30)
    acked = set(sender.acked)
    assert len(acked) == len(sender.acked), "the sender never gets two 200s for one id"

    def landed() -> bool:
        table = read_table(config, "cleaned.tracks")
        return table is not None and acked <= set(table.column("id").to_pylist())

    wait_for(landed, 120, "every acknowledged event in cleaned.tracks")
    time.sleep(2.0)  # let anything still in flight land, then check nothing doubled
    tracks = read_table(config, "cleaned.tracks")
    per_event = read_table(config, "cleaned.invite_sent")
    assert tracks is not None and per_event is not None
    for table in (tracks, per_event):
        ids = table.column("id")
        assert len(ids) == len(pc.unique(ids)), "an event landed twice"
        assert acked <= set(ids.to_pylist())
    raw = read_table(config, "raw.sdk_events")
    assert raw is not None
    origins = raw.column("origin")
    assert len(origins) == len(pc.unique(origins)), "a log record was written to raw twice"
