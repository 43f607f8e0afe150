"""Driving traffic at a steady rate through a few keep-alive connections, counting what the
collector accepted (the demo report compares it with what landed in the lake).

The pacer builds each body just before it is queued; a small bounded queue feeds the sender
threads, so a slow or throttling collector slows the pacer down instead of piling up bodies.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from insightloop.demo.sender import Sender
from insightloop.demo.traffic import OutgoingBatch, Traffic


@dataclass
class TrafficStats:
    """What the collector accepted (HTTP 200), counting each distinct batch once."""

    requests_ok: int = 0
    requests_failed: int = 0
    throttled: int = 0
    #: Every event in an accepted body, re-sent copies included.
    events_accepted: int = 0
    #: Valid events in accepted bodies, re-sent copies included.
    valid_sent: int = 0
    #: Distinct valid events accepted (each messageId once).
    valid_distinct: int = 0
    #: Valid events in accepted re-sends of a batch already accepted.
    retried_copies: int = 0
    invalid_distinct: int = 0
    late_distinct: int = 0
    #: Drifted events accepted, re-sent copies included (quarantine keeps every copy).
    drift_sent: int = 0
    #: Contract-breaking events accepted, re-sent copies included.
    broken_sent: int = 0
    #: Distinct valid events with no contract accepted.
    no_contract_distinct: int = 0
    #: messageIds of the drifted and of the contract-breaking events accepted.
    drift_ids: set[str] = field(default_factory=set)
    broken_ids: set[str] = field(default_factory=set)
    types: Counter[str] = field(default_factory=Counter)
    #: Marker messageId → when its batch was accepted (``time.monotonic()``).
    markers: dict[str, float] = field(default_factory=dict)
    last_error: str | None = None
    started: float | None = None
    stopped: float | None = None

    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.stopped if self.stopped is not None else time.monotonic()) - self.started


class TrafficRun:
    def __init__(
        self,
        traffic: Traffic,
        base_url: str,
        rate: float,
        duration: float | None,
        connections: int = 4,
        marker_every: float = 1.0,
    ) -> None:
        self.traffic = traffic
        self.base_url = base_url
        self.rate = rate
        self.duration = duration
        self.connections = connections
        self.marker_every = marker_every
        self.stats = TrafficStats()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._accepted: set[int] = set()
        self._last_marker = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="demo-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Send until ``stop()`` or for ``duration`` seconds, then wait for in-flight requests."""
        work: queue.Queue[OutgoingBatch | None] = queue.Queue(maxsize=self.connections * 2)
        senders = [
            threading.Thread(target=self._send_loop, args=(work,), name=f"demo-sender-{i}", daemon=True)
            for i in range(self.connections)
        ]
        for thread in senders:
            thread.start()
        start = time.monotonic()
        with self.lock:
            self.stats.started = start
        queued = 0
        try:
            while not self._stop.is_set():
                elapsed = time.monotonic() - start
                if self.duration is not None and elapsed >= self.duration:
                    break
                ahead = queued / self.rate - elapsed
                if ahead > 0:
                    self._stop.wait(min(ahead, 0.5))
                    continue
                batch = self.traffic.next_batch(dt.datetime.now(dt.UTC))
                while not self._stop.is_set():
                    try:
                        work.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                queued += batch.events
        finally:
            for _ in senders:
                work.put(None)
            for thread in senders:
                thread.join()
            with self.lock:
                self.stats.stopped = time.monotonic()

    def _send_loop(self, work: queue.Queue[OutgoingBatch | None]) -> None:
        sender = Sender(self.base_url)
        try:
            while (batch := work.get()) is not None:
                outcome = sender.send(batch.write_key, batch.body)
                self._record(batch, outcome.status, outcome.throttled, outcome.error)
        finally:
            sender.close()

    def _record(self, batch: OutgoingBatch, status: int | None, throttled: int, error: str | None) -> None:
        now = time.monotonic()
        with self.lock:
            stats = self.stats
            stats.throttled += throttled
            if status != 200:
                stats.requests_failed += 1
                stats.last_error = error or f"HTTP {status}"
                return
            stats.requests_ok += 1
            stats.events_accepted += batch.events
            stats.valid_sent += len(batch.valid_ids)
            stats.drift_sent += len(batch.drifted_ids)
            stats.broken_sent += len(batch.broken_ids)
            stats.drift_ids.update(batch.drifted_ids)
            stats.broken_ids.update(batch.broken_ids)
            if batch.batch_id in self._accepted:
                stats.retried_copies += len(batch.valid_ids)
                return
            self._accepted.add(batch.batch_id)
            stats.valid_distinct += len(batch.valid_ids)
            stats.invalid_distinct += batch.invalid
            stats.late_distinct += batch.late
            stats.no_contract_distinct += len(batch.no_contract_ids)
            stats.types.update(batch.types)
            if batch.marker is not None and now - self._last_marker >= self.marker_every:
                stats.markers[batch.marker] = now
                self._last_marker = now
