from __future__ import annotations

import socket
from pathlib import Path

import pyarrow as pa
import pytest
from cli_kit import at, raw_row
from pyiceberg.schema import Schema
from pyiceberg.types import NestedField, StringType, TimestamptzType

from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA, ensure_raw_table
from insightloop.lake.watermarks import LOG_POSITIONS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A data dir of its own and a collector port nobody listens on."""
    values = {
        "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
        "INSIGHTLOOP__COLLECTOR__PORT": str(free_port()),
    }
    monkeypatch.delenv("INSIGHTLOOP_CONFIG", raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def config(env: dict[str, str]) -> Config:
    return load_config()


@pytest.fixture
def lake(config: Config) -> Config:
    """raw.sdk_events with 3 rows in 2 commits; cleaned.tracks with 2 rows."""
    catalog = open_catalog(config)
    raw = ensure_raw_table(catalog)
    raw.append(
        pa.Table.from_pylist([raw_row("m1", 1, 1), raw_row("m2", 2, 1)], schema=RAW_ARROW_SCHEMA),
        snapshot_properties={LOG_POSITIONS: '{"shard-0": 0}'},
    )
    raw.append(
        pa.Table.from_pylist([raw_row("m3", 3, 2)], schema=RAW_ARROW_SCHEMA),
        snapshot_properties={LOG_POSITIONS: '{"shard-0": 1}'},
    )
    schema = Schema(
        NestedField(1, "id", StringType(), required=False),
        NestedField(2, "event", StringType(), required=False),
        NestedField(3, "received_at", TimestamptzType(), required=False),
    )
    tracks = catalog.create_table("cleaned.tracks", schema=schema)
    tracks.append(
        pa.Table.from_pylist(
            [
                {"id": "m1", "event": "Report Created", "received_at": at(1)},
                {"id": "m2", "event": "Invite Sent, with a comma", "received_at": at(2)},
            ],
            schema=schema.as_arrow(),
        )
    )
    return config
