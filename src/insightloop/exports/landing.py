"""The landing zone: ``<landing>/<source>/<entity>/<file>``, listed through ``pyarrow.fs``.

Locally the landing zone is a folder (``LocalFileSystem``); in production it is an S3 prefix
(``s3://bucket/prefix``, an ``S3FileSystem``): the same code lists both. An S3 filesystem is
``pyarrow.fs.FileSystem.from_uri``'s, unless ``exports.s3_region`` or ``exports.s3_endpoint``
is set (a fixed region; MinIO or a test server), when it is built from them; credentials come
from AWS's standard chain (environment, profile, instance role) either way.

Files whose names start with ``.`` or ``_`` or end in ``.tmp``/``.part`` are uploads in
progress and are skipped (an uploader writes them under such a name and renames them into
place; on S3, where a ``PUT`` appears whole, it may as well upload under the final name).
A file's format comes from its name (``.csv``/``.tsv``/``.txt``, ``.jsonl``/``.ndjson``/
``.json``, ``.parquet``, optionally followed by ``.gz``/``.gzip``/``.zst``). Its period is
the first date in its name (``contacts_2026-11-25.csv``, ``20261125``), else the UTC date it
was last modified.

A vendor may split one period's export into parts. A file's part is read from its name, right
after the date and a separator (``-``, ``_``, ``.`` or a space), up to the next separator or
the end of the name (``_PART``):

- ``part-001``, ``part_1``, ``part001``, ``pt2``, ``p1`` (any number of digits);
- a bare number of 1 to 3 digits: ``_001``, ``-2`` (a longer one is no part: ``_1430``,
  ``_143012`` are the time of a re-sent file);
- either followed by ``of<N>``: ``-3of8``, ``part-3-of-8``.

Leading zeros do not count (``part-001`` and ``_1`` are part ``1``); a name without a part
has part ``""``. Files of one source, entity and period with different parts each load and
add up; a later file with the same source, entity, period and part (the same part re-sent,
or a file without a part re-sent under any name) is a correction that replaces it. So
``contacts_2026-11-25_v2.csv`` and ``contacts_2026-11-25_resent.csv`` correct
``contacts_2026-11-25.csv``, and ``contacts_2026-11-25_part-002.csv`` sent again corrects
part 2 only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from insightloop.config import Config, ExportsConfig
from insightloop.errors import ConfigError

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
#: A part number right after the date (see the module's docstring), matched from its end.
_PART = re.compile(
    r"""[-_. ]
        (?: (?:part|pt|p)[-_]?(?P<named>\d+)   # part-001, part001, part_1, pt2, p1
          | (?P<bare>\d{1,3}) )                # _001, -2 (not a time such as _1430)
        (?:[-_]?of[-_]?\d+)?                   # 3of8, part-3-of-8
        (?=[-_. ]|$)""",
    re.IGNORECASE | re.VERBOSE,
)


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
        named = period_and_part(self.name)[0]
        if named is not None:
            return named
        moment = self.modified or datetime.now(UTC)
        return moment.astimezone(UTC).date().isoformat()

    def part(self) -> str:
        """Which part of its period's export the file is (``"1"``, ``"2"`` …); ``""``: none."""
        return period_and_part(self.name)[1]


def period_and_part(name: str) -> tuple[str | None, str]:
    """The date in a file's name (None: none, or not a valid date) and the part after it."""
    found = _DATE.search(name)
    if found is None:
        return None, ""
    try:
        day = date(*(int(number) for number in found.groups())).isoformat()
    except ValueError:
        return None, ""
    part = _PART.match(name, found.end())
    if part is None:
        return day, ""
    return day, str(int(part["named"] or part["bare"]))


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
            filesystem, root = open_uri(where, config.exports)
            return cls(filesystem, root, scheme_of(where))
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


def scheme_of(uri: str) -> str:
    """``s3://bucket/key`` → ``s3://``."""
    return uri.split("://", 1)[0] + "://"


def open_uri(uri: str, exports: ExportsConfig) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a non-local URI (``s3://bucket/prefix``) and the path in it."""
    if scheme_of(uri) != "s3://" or not (exports.s3_region or exports.s3_endpoint):
        filesystem, path = pafs.FileSystem.from_uri(uri)
        return filesystem, path
    parts = urlsplit(uri)
    if parts.query:
        raise ConfigError(
            f"{uri}: give the endpoint and region as exports.s3_endpoint and exports.s3_region, "
            "not as URI options"
        )
    return s3_filesystem(exports), f"{parts.netloc}{parts.path}".rstrip("/")


def s3_filesystem(exports: ExportsConfig) -> pafs.S3FileSystem:
    """S3 with ``exports.s3_region`` and ``exports.s3_endpoint`` (validated by the config)."""
    options: dict[str, str] = {}
    if exports.s3_region:
        options["region"] = exports.s3_region
    if exports.s3_endpoint:
        endpoint = urlsplit(exports.s3_endpoint)
        options["endpoint_override"] = endpoint.netloc
        options["scheme"] = endpoint.scheme
    return pafs.S3FileSystem(**options)


def local_files(path: Path, source: str | None, entity: str | None) -> list[LandedFile]:
    """The export files of a local file or folder given by hand (``insightloop load``); a
    file's source and entity are given, or else its grandparent and parent folders' names."""
    return files_at(pafs.LocalFileSystem(), str(path.expanduser().absolute()), "", source, entity)


def given_files(
    where: str, exports: ExportsConfig, source: str | None, entity: str | None
) -> list[LandedFile]:
    """The export files of a local path or of a URI given by hand (``s3://bucket/key`` of one
    file, or a prefix), as ``local_files``; ``FileNotFoundError`` when nothing is there."""
    if "://" not in where:
        return local_files(Path(where), source, entity)
    filesystem, path = open_uri(where, exports)
    return files_at(filesystem, path, scheme_of(where), source, entity)


def files_at(
    filesystem: pafs.FileSystem, path: str, scheme: str, source: str | None, entity: str | None
) -> list[LandedFile]:
    """The file at ``path``, or the export files under it (recursively; uploads in progress
    and files of other formats left out), sorted by path; ``FileNotFoundError`` if none is."""
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{scheme}{path}")
    found = [info]
    if info.type == pafs.FileType.Directory:
        everything = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
        found = [
            f
            for f in everything
            if f.type == pafs.FileType.File and not in_progress(f.base_name) and file_format(f.base_name)[0]
        ]
    files = []
    for file in sorted(found, key=lambda f: f.path):
        folders = [*PurePosixPath(file.path).parents, PurePosixPath(), PurePosixPath()]
        files.append(
            LandedFile(
                path=file.path,
                uri=f"{scheme}{file.path}",
                source=source or folders[1].name,
                entity=entity or folders[0].name,
                size=file.size or 0,
                modified=file.mtime,
                filesystem=filesystem,
            )
        )
    return files
