"""A cheap HTTP load generator: pre-built /v1/batch bodies whose message ids are made
unique per send with one bytes.replace, sent over keep-alive connections from threads.

Run in its own process so its CPU is visible apart from the pipeline's.
"""

from __future__ import annotations

import base64
import http.client
import threading
import time
from dataclasses import dataclass

import orjson

from benchmarks.events import track_events

PLACEHOLDER = b"PPPPPPPPPP"  # 10 bytes, replaced by a zero-padded batch number


@dataclass
class LoadResult:
    accepted_events: int
    requests: int
    throttled: int
    errors: int
    seconds: float


#: Distinct bodies sent in turn, so the lake's compression sees varied data, as in life.
TEMPLATES = 16


def build_template(events_per_batch: int, seed: int = 3) -> bytes:
    events = [
        orjson.loads(e) for e in track_events(events_per_batch, seed=seed, id_prefix=PLACEHOLDER.decode())
    ]
    return orjson.dumps({"batch": events, "sentAt": "2026-11-26T10:00:00.000Z"})


def generate(
    port: int,
    write_key: str,
    seconds: float,
    rate: float | None,
    events_per_batch: int = 300,
    connections: int = 4,
    first_batch: int = 0,
) -> LoadResult:
    """Send for ``seconds``; ``rate`` events/s in total, or as fast as accepted when None."""
    templates = [build_template(events_per_batch, seed) for seed in range(TEMPLATES)]
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    lock = threading.Lock()
    counter = [first_batch]
    totals = {"accepted": 0, "requests": 0, "throttled": 0, "errors": 0}
    start = time.monotonic()
    deadline = start + seconds
    per_conn_interval = None if rate is None else events_per_batch * connections / rate

    def worker(offset: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        next_send = start + offset
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if per_conn_interval is not None and now < next_send:
                time.sleep(min(next_send - now, deadline - now))
                continue
            with lock:
                number = counter[0]
                counter[0] += 1
            body = templates[number % TEMPLATES].replace(PLACEHOLDER, b"%010d" % number)
            status = 0
            try:
                conn.request("POST", "/v1/batch", body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                totals["requests"] += 1
                if status == 200:
                    totals["accepted"] += events_per_batch
                elif status == 429:
                    totals["throttled"] += 1
                else:
                    totals["errors"] += 1
            if status == 429:
                time.sleep(0.05)
            if per_conn_interval is not None:
                next_send += per_conn_interval
        conn.close()

    threads = [
        threading.Thread(target=worker, args=(i * (per_conn_interval or 0) / connections,))
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(
        totals["accepted"],
        totals["requests"],
        totals["throttled"],
        totals["errors"],
        time.monotonic() - start,
    )
