"""Each file's status, for people: ``discovered`` → ``loading`` → ``loaded`` | ``unchanged``
(its content was loaded before: a no-op) | ``rejected`` (with the reason: the file's fault;
looked at again only once it changes) | ``failed`` (with the reason: the lake could not be
written, such as a full disk; looked at again at the loader's next look), with rows, bad
rows, bytes and seconds. Kept in ``<data_dir>/exports/status.json`` (rewritten atomically;
only the lock holder writes it). ``files_status`` is what ``insightloop status`` shows.

Status is for visibility and for the loader's choice of what to look at: whether a file's
rows are in the lake is decided by the manifest and raw, never by this file.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from insightloop.config import Config

FILE = "status.json"
DISCOVERED = "discovered"
LOADING = "loading"
LOADED = "loaded"
UNCHANGED = "unchanged"
REJECTED = "rejected"
FAILED = "failed"
STATUSES = (DISCOVERED, LOADING, LOADED, UNCHANGED, REJECTED, FAILED)


class FileStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    uri: str
    source: str
    entity: str
    status: str
    #: When the status last changed (ISO 8601, UTC).
    at: str
    size: int = 0
    #: The file's modification time when it was looked at (a changed file is looked at again).
    modified: str | None = None
    sha256: str | None = None
    period: str | None = None
    #: Which part of its period's export the file is ("": none; see ``landing``).
    part: str = ""
    reason: str | None = None
    rows: int = 0
    bad_rows: int = 0
    seconds: float = 0.0
    seq: int | None = None


def state_directory(config: Config) -> Path:
    """Where the file loader keeps its manifest cache and file statuses."""
    return config.path("exports")


class StatusBook:
    def __init__(self, directory: Path) -> None:
        self._path = directory / FILE
        try:
            self._files = msgspec.json.decode(self._path.read_bytes(), type=dict[str, FileStatus])
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            self._files = {}

    def get(self, uri: str) -> FileStatus | None:
        return self._files.get(uri)

    def all(self) -> list[FileStatus]:
        return sorted(self._files.values(), key=lambda f: f.uri)

    def set(self, status: FileStatus) -> FileStatus:
        self._files[status.uri] = msgspec.structs.replace(status, at=now())
        self._save()
        return self._files[status.uri]

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(self._files))
        os.replace(tmp, self._path)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def files_status(config: Config) -> list[FileStatus]:
    """Every file the loader (or ``insightloop load``) has seen, by path: for ``insightloop
    status``. Reads one small file; no lock, any process."""
    return StatusBook(state_directory(config)).all()
