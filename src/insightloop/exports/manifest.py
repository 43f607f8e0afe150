"""The manifest of loaded files, keyed by content hash: what makes a file load never twice.

The truth is raw: each file's raw commit carries its ``FileRecord`` in its snapshot
properties (``raw_load.FILE_PROPERTY``), in the same commit as its rows. The manifest is a
cache of those records (``<data_dir>/exports/manifest.json``, rewritten atomically), brought
up to date from raw's snapshots before every use (``reconcile``): a crash between the raw
commit and the cache write, or a lost cache, costs nothing. Should both the cache and the
snapshots be gone (expired), ``raw_holds`` asks raw's rows themselves (``event_id`` is
``<sha256>:<row>``, and the data files' column bounds prune the scan to the file's own).
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from pyiceberg.expressions import BooleanExpression, EqualTo
from pyiceberg.table import Table

from insightloop.exports.raw_load import FILE_PROPERTY, FileRecord

FILE = "manifest.json"


class Manifest:
    def __init__(self, directory: Path) -> None:
        self._path = directory / FILE
        self._records: dict[str, FileRecord] = {}
        try:
            data = self._path.read_bytes()
            self._records = msgspec.json.decode(data, type=dict[str, FileRecord])
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            self._records = {}

    def records(self) -> list[FileRecord]:
        """Every loaded file, in raw order."""
        return sorted(self._records.values(), key=lambda r: r.seq)

    def get(self, sha256: str) -> FileRecord | None:
        return self._records.get(sha256)

    def current(self, source: str, entity: str, period: str, part: str) -> FileRecord | None:
        """The latest file loaded for a source, entity, period and part (``""``: a file not in
        parts), which a new file of the same four corrects and replaces."""
        key = (source, entity, period, part)
        found = [r for r in self._records.values() if (r.source, r.entity, r.period, r.part) == key]
        return max(found, key=lambda r: r.seq) if found else None

    def live(self, entity: str) -> list[FileRecord]:
        """The current file of each source, period and part of ``entity`` (the latest loaded;
        an earlier one it corrected is no longer current). The parts of a period are all live."""
        latest: dict[tuple[str, str, str], FileRecord] = {}
        for record in self.records():
            if record.entity == entity:
                latest[(record.source, record.period, record.part)] = record
        return list(latest.values())

    def add(self, record: FileRecord) -> None:
        self._records[record.sha256] = record
        self._save()

    def reconcile(self, table: Table) -> int:
        """Add the records raw's snapshots hold and the cache lacks; returns how many."""
        added = 0
        for snapshot in table.metadata.snapshots:
            extra = snapshot.summary.additional_properties if snapshot.summary is not None else {}
            text = extra.get(FILE_PROPERTY)
            if text is None:
                continue
            record = msgspec.json.decode(text, type=FileRecord)
            if record.sha256 not in self._records:
                self._records[record.sha256] = record
                added += 1
        if added:
            self._save()
        return added

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(self._records))
        os.replace(tmp, self._path)


def raw_holds(table: Table, sha256: str) -> bool:
    """Whether raw holds rows of the file with this hash (its first row's ``event_id``)."""
    if table.metadata.current_snapshot() is None:
        return False
    first: BooleanExpression = EqualTo("event_id", f"{sha256}:1")  # type: ignore[call-arg, arg-type]
    rows = table.scan(row_filter=first, selected_fields=("event_id",))
    return bool(rows.to_arrow().num_rows > 0)
