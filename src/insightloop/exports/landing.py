"""The landing zone: ``<landing>/<source>/<entity>/<file>``, listed through ``pyarrow.fs``.

Locally the landing zone is a folder (``LocalFileSystem``); in production it is an S3 prefix
(``pyarrow.fs.FileSystem.from_uri("s3://bucket/prefix")`` gives ``S3FileSystem``): the same
code lists both. Files whose names start with ``.`` or ``_`` or end in ``.tmp``/``.part`` are
uploads in progress and are skipped (an uploader writes them under such a name and renames
them into place). A file's format comes from its name (``.csv``/``.tsv``/``.txt``, ``.jsonl``/
``.ndjson``/``.json``, ``.parquet``, optionally followed by ``.gz``/``.gzip``/``.zst``).
Its period is the first date in its name (``contacts_2026-11-25.csv``, ``20261125``), else
the UTC date it was last modified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.fs as pafs

from insightloop.config import Config

COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd"}
FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}
_IN_PROGRESS = (".tmp", ".part")
_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


@dataclass(frozen=True)
class LandedFile:
    """One export file: where it is, what it holds, and whose it is."""

    #: The file's path for ``filesystem`` (a local path, or ``bucket/key`` on S3).
    path: str
    #: How the file is named in the lake (raw rows' origin, the manifest, status).
    uri: str
    source: str
    entity: str
    size: int
    modified: datetime | None
    filesystem: pafs.FileSystem

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def format(self) -> str | None:
        """``csv``, ``jsonl`` or ``parquet`` (None: not an export file)."""
        return file_format(self.name)[0]

    @property
    def compression(self) -> str | None:
        return file_format(self.name)[1]

    @property
    def local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def period(self) -> str:
        """The date the export covers: from the name, else the day it was last modified."""
        found = _DATE.search(self.name)
        if found is not None:
            try:
                return date(*(int(part) for part in found.groups())).isoformat()
            except ValueError:
                pass
        moment = self.modified or datetime.now(UTC)
        return moment.astimezone(UTC).date().isoformat()


def file_format(name: str) -> tuple[str | None, str | None]:
    """(format, compression) of a file name."""
    lower = name.lower()
    compression = None
    for suffix, kind in COMPRESSIONS.items():
        if lower.endswith(suffix):
            compression, lower = kind, lower[: -len(suffix)]
            break
    suffix = "." + lower.rsplit(".", 1)[-1] if "." in lower else ""
    return FORMATS.get(suffix), compression


def in_progress(name: str) -> bool:
    return name.startswith((".", "_")) or name.lower().endswith(_IN_PROGRESS)


class Landing:
    """The landing zone of a lake."""

    def __init__(self, filesystem: pafs.FileSystem, root: str, scheme: str = "") -> None:
        self.filesystem = filesystem
        self.root = root.rstrip("/")
        self._scheme = scheme

    @classmethod
    def from_config(cls, config: Config) -> Landing:
        where = config.exports.landing or str(config.path("landing"))
        if "://" in where:
            filesystem, root = pafs.FileSystem.from_uri(where)
            return cls(filesystem, root, where.split("://", 1)[0] + "://")
        root = str(Path(where).expanduser().absolute())
        Path(root).mkdir(parents=True, exist_ok=True)
        return cls(pafs.LocalFileSystem(), root)

    def discover(self) -> list[LandedFile]:
        """Every export file at ``<source>/<entity>/<file>`` under the root, sorted by path."""
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        found = []
        for info in self.filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            parts = info.path[len(self.root) :].strip("/").split("/")
            if len(parts) != 3 or in_progress(parts[-1]) or file_format(parts[-1])[0] is None:
                continue
            found.append(self._landed(info, parts[0], parts[1]))
        return sorted(found, key=lambda f: f.path)

    def _landed(self, info: pafs.FileInfo, source: str, entity: str) -> LandedFile:
        return LandedFile(
            path=info.path,
            uri=f"{self._scheme}{info.path}",
            source=source,
            entity=entity,
            size=info.size or 0,
            modified=info.mtime,
            filesystem=self.filesystem,
        )


def local_files(path: Path, source: str | None, entity: str | None) -> list[LandedFile]:
    """The export files of a local file or folder given by hand (``insightloop load``); a
    file's source and entity are given, or else its grandparent and parent folders' names."""
    filesystem = pafs.LocalFileSystem()
    path = path.expanduser().absolute()
    if path.is_dir():
        candidates = sorted(p for p in path.rglob("*") if p.is_file())
        candidates = [p for p in candidates if not in_progress(p.name) and file_format(p.name)[0]]
    else:
        candidates = [path]
    files = []
    for file in candidates:
        info = filesystem.get_file_info(str(file))
        files.append(
            LandedFile(
                path=str(file),
                uri=str(file),
                source=source or file.parent.parent.name,
                entity=entity or file.parent.name,
                size=info.size or 0,
                modified=info.mtime,
                filesystem=filesystem,
            )
        )
    return files
