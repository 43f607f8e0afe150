"""The CDC stage's watermark on disk: the raw ``ingest_seq`` every one of its tables has
applied, written (atomically, by rename) only after all of a batch's table commits. It only
bounds how much raw a restart re-reads: each table's own commit says what it holds, so a
lost or stale marker costs a longer replay, never a duplicate."""

from __future__ import annotations

from pathlib import Path

from insightloop.files import write_atomically

FILE = "watermark"


class Marker:
    def __init__(self, directory: Path) -> None:
        self._path = directory / FILE
        self.value = read_marker(directory)

    def write(self, seq: int) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self._path, f"{seq}\n".encode(), durable=False)  # losing it costs time only
        self.value = seq


def read_marker(directory: Path) -> int:
    try:
        return int((directory / FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0
