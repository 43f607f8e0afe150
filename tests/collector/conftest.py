"""Fixtures: the collector app over an in-memory log with the default limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from collector_kit import TestClient, make_config, running

from insightloop.log.memory import MemoryLog


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog(shards=2)


@pytest.fixture
def client(log: MemoryLog) -> Iterator[TestClient]:
    with running(make_config(), log) as client:
        yield client
