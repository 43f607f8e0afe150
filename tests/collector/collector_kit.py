"""What the collector's tests share: config, auth headers, an app over a log, what it stored."""

from __future__ import annotations

import base64
import struct
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from insightloop.collected import CollectedBatch, decode_batch
from insightloop.collector import create_app
from insightloop.config import CollectorConfig, Config, SdkSource
from insightloop.log import Log

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 for its TestClient; the project pins httpx, which still works.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient as TestClient

WEB_KEY = "web-write-key"
BACKEND_KEY = "backend-write-key"
MB = 1 << 20


def make_config(**collector: Any) -> Config:
    sources = {"web": SdkSource([WEB_KEY]), "backend": SdkSource([BACKEND_KEY])}
    return Config(collector=CollectorConfig(sources=sources, **collector))


def basic(key: str) -> dict[str, str]:
    """The header Segment SDKs send: basic auth, the write key as user, no password."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


WEB = basic(WEB_KEY)


@contextmanager
def running(config: Config, log: Log, **options: Any) -> Iterator[TestClient]:
    """A client of the app over ``log``, its lifespan (log writer, lag monitor) running."""
    with TestClient(create_app(config, log, **options)) as client:
        yield client


def stored(log: Log) -> list[CollectedBatch]:
    """Every record in the log, decoded, shard by shard."""
    return [decode_batch(record.data) for shard in log.shards() for record in log.read(shard, None)]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def gzip_bomb(megabytes: int) -> bytes:
    """``megabytes`` MB of zeros as one gzip member of about 1 KB per MB, built by streaming
    compression: after a full flush each further MB of zeros compresses to the same bytes."""
    zeros = bytes(MB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    final_empty_block = b"\x03\x00"
    trailer = struct.pack("<II", crc, (megabytes * MB) & 0xFFFFFFFF)
    return first + repeat * (megabytes - 1) + final_empty_block + trailer
