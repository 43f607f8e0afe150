"""The reader's own state, ``<data_dir>/cdc/state.json``: which database and slot it reads,
where the slot started, how far it has confirmed, and how far the snapshot got.

Written atomically (temporary file, fsync, rename). ``confirmed_lsn`` is saved *before* the
slot is told, so the slot's ``confirmed_flush_lsn`` is never ahead of it while the slot is
ours: a slot found further on than the state says was recreated by someone else.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from insightloop.config import Config
from insightloop.files import write_atomically


class SnapshotProgress(msgspec.Struct):
    complete: bool = False
    tables_total: int = 0
    tables_done: list[str] = msgspec.field(default_factory=list)
    rows: int = 0
    started_at: float | None = None
    finished_at: float | None = None


class ReaderState(msgspec.Struct):
    #: The source database: ``IDENTIFY_SYSTEM``'s system identifier and database name.
    system_id: str
    database: str
    slot: str
    #: The slot's consistent point when the reader created it (its snapshot's LSN).
    slot_lsn: int
    confirmed_lsn: int
    snapshot: SnapshotProgress = msgspec.field(default_factory=SnapshotProgress)
    #: How many times the reader found its slot gone or replaced and snapshotted again.
    resnapshots: int = 0
    updated_at: float = 0.0
    #: The LSN of the snapshot's reads: the slot's restart point at creation (``reader._reads_lsn``).
    snapshot_lsn: int = 0
    #: Columns the reader has seen per table (``<schema>.<table>``) as of ``confirmed_lsn``:
    #: a column not among them in a Relation message is new (it may need a ``ColumnFill``).
    columns: dict[str, list[str]] = msgspec.field(default_factory=dict)


def state_path(config: Config) -> Path:
    return config.path("cdc", "state.json")


def load_state(path: Path) -> ReaderState | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return msgspec.json.decode(data, type=ReaderState)


def save_state(path: Path, state: ReaderState) -> None:
    state.updated_at = time.time()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, msgspec.json.encode(state))


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)
