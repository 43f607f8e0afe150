"""A file's load folder, ``<state>/staging/<sha256>/``: its typed rows, staged beside its raw
rows (what stage 2 merges into the cleaned table without parsing raw's JSON payloads and
casting their text a second time), and the journal of the lake data files written for it
before their commit (what a crash would leave unreferenced).

Stage 1 computes each row's typed values anyway (to check them), so it writes them here too,
as Parquet files in ``<state>/staging/<sha256>/`` (snappy: they are read once, soon), and a
marker (``staged.json``: the columns and their types, the row count) once every row is
written, before the raw commit. Stage 2 uses them for the file's incoming rows when the
marker is there and the types match the table's, then deletes them; otherwise (a crash
between the two stages, a lost state directory, a replay) it derives the same rows from raw,
with the same SQL (``reader.typed_value``): the staged rows are a cache, raw stays the truth.
A load folder whose file is not waiting for stage 2 is swept away (``sweep``); if the file
never reached raw (a load killed before its raw commit), the data files its journal lists
are deleted with it: nothing references them, and nothing else would find them.
Stage 2 deletes the cleaned files a crashed attempt journaled before it writes again.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from insightloop.exports.background import Background
from insightloop.files import write_atomically

STAGING = "staging"
MARKER = "staged.json"
#: The journal: one line per lake data file (or folder of them) written before a commit,
#: ``<stage> <path>``, appended (and synced) before the file is created.
JOURNAL = "written.txt"
RAW, CLEANED = "raw", "cleaned"
#: Staged columns beside the typed values: the row's number, its load time, and whether it
#: was rejected (rejected rows are staged too, and skipped by stage 2: filtering them out
#: here would copy every column).
ROW, LOADED_AT, REJECTED = "_row", "_loaded_at", "_rejected"


class _Column(msgspec.Struct, frozen=True):
    name: str
    sql: str


class _Marker(msgspec.Struct, frozen=True):
    sha256: str
    rows: int
    columns: list[_Column]


#: Deletes a lake data file (the table's ``FileIO``), ignoring one already gone.
Delete = Callable[[str], None]


@dataclass(frozen=True)
class Staged:
    """A file's staged rows: Parquet files, and each typed column's DuckDB type."""

    paths: list[str]
    columns: dict[str, str]
    rows: int


def folder(state_dir: Path, sha256: str) -> Path:
    return state_dir / STAGING / sha256


class StagingWriter:
    """Writes a file's typed chunks into its staging folder (emptied first), in a thread."""

    def __init__(self, state_dir: Path, sha256: str, columns: Sequence[tuple[str, str]]) -> None:
        self._folder = folder(state_dir, sha256)
        self._sha256 = sha256
        self._columns = [_Column(name, sql) for name, sql in columns]
        shutil.rmtree(self._folder, ignore_errors=True)
        self._folder.mkdir(parents=True)
        self._numbers = itertools.count()
        self._background: Background[pa.Table] = Background(self._write, "staging-writer")

    def put(self, chunk: pa.Table) -> None:
        self._background.put(chunk)

    def finish(self, rows: int) -> None:
        """Wait for every chunk, then write the marker: the staged rows are complete."""
        self._background.finish()
        marker = _Marker(self._sha256, rows, self._columns)
        write_atomically(self._folder / MARKER, msgspec.json.encode(marker))

    def discard(self) -> None:
        self._background.cancel()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _write(self, chunk: pa.Table) -> None:
        path = self._folder / f"part-{next(self._numbers):05d}.parquet"
        # Typed values are mostly different from row to row: a dictionary is not worth trying.
        pq.write_table(chunk, path, compression="snappy", use_dictionary=False)


def staged(state_dir: Path, sha256: str) -> Staged | None:
    """The complete staged rows of a file (None: none, or not complete)."""
    where = folder(state_dir, sha256)
    try:
        marker = msgspec.json.decode((where / MARKER).read_bytes(), type=_Marker)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    if marker.sha256 != sha256:
        return None
    paths = sorted(str(path) for path in where.glob("part-*.parquet"))
    return Staged(paths, {column.name: column.sql for column in marker.columns}, marker.rows)


def remove(state_dir: Path, sha256: str) -> None:
    shutil.rmtree(folder(state_dir, sha256), ignore_errors=True)


def journal(state_dir: Path, sha256: str, stage: str, path: str) -> None:
    """Record that ``path`` (a data file or a folder of them) is about to be written for the
    file ``sha256`` by ``stage`` (``RAW`` or ``CLEANED``), durably, before it is."""
    where = folder(state_dir, sha256)
    where.mkdir(parents=True, exist_ok=True)
    with open(where / JOURNAL, "a", encoding="utf-8") as out:
        out.write(f"{stage} {path}\n")
        out.flush()
        os.fsync(out.fileno())


def journaled(state_dir: Path, sha256: str, stage: str) -> list[str]:
    """The paths journaled for the file ``sha256`` by ``stage``."""
    try:
        lines = (folder(state_dir, sha256) / JOURNAL).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line.split(" ", 1)[1] for line in lines if line.startswith(f"{stage} ")]


def sweep(state_dir: Path, keep: Collection[str], committed: Collection[str], delete: Delete) -> int:
    """Delete the load folders of files not in ``keep`` (sha256s waiting for stage 2), and,
    for a file not in ``committed`` (never in raw), the raw data files its journal lists;
    how many folders."""
    root = state_dir / STAGING
    if not root.is_dir():
        return 0
    removed = 0
    for path in sorted(root.iterdir()):
        if path.name in keep:
            continue
        if path.name not in committed:
            for orphan in journaled(state_dir, path.name, RAW):
                delete(orphan)
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed
