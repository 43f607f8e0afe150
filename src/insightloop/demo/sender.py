"""Sending Segment batches over one keep-alive HTTP connection, as an SDK does.

429 answers are honoured (wait ``Retry-After``, send the same body again); connection errors
and 5xx answers are retried with back-off; other answers are final.
"""

from __future__ import annotations

import base64
import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the final HTTP status, None when the collector could not be reached
    throttled: int  # 429 answers before the final one
    attempts: int
    error: str | None = None


class Sender:
    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        max_attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        max_retry_after: float = 10.0,
    ) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._max_retry_after = max_retry_after
        self._connection: http.client.HTTPConnection | None = None

    def send(self, write_key: str, gzipped_body: bytes, path: str = "/v1/batch") -> Outcome:
        auth = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Basic {auth}",
            "User-Agent": "insightloop-demo/0.1",
        }
        throttled = 0
        error: str | None = None
        delay = 0.25
        for attempt in range(1, self._max_attempts + 1):
            try:
                status, retry_after = self._post(path, gzipped_body, headers)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                error = f"{type(exc).__name__}: {exc}"
                self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if status == 429:
                throttled += 1
                self._sleep(min(retry_after if retry_after is not None else 1.0, self._max_retry_after))
                continue
            if status >= 500:
                error = f"HTTP {status}"
                self._sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            return Outcome(status, throttled, attempt)
        return Outcome(None, throttled, self._max_attempts, error or "throttled on every attempt")

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, float | None]:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._connection.request("POST", path, body=body, headers=headers)
        response = self._connection.getresponse()
        response.read()
        if response.will_close:
            self.close()
        return response.status, _seconds(response.getheader("Retry-After"))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
