"""Loading one export file, whole or not at all, never twice: the core that both
``insightloop load`` and the file loader process run.

For a file: hash its bytes (sha256, streamed); if the manifest (or raw itself) already has
that hash, it is ``unchanged``, a no-op. Otherwise check it against its entity's export
contract, stream its rows into raw and commit them at once (``raw_load``): that commit is
the load. A file that cannot be read to its end (a truncated gzip), whose header breaks its
contract, or whose bad rows exceed the limit is ``rejected`` with the reason, and nothing of
it is committed. Then stage 2 (``apply``) derives quarantine and cleaned from raw.

The caller holds the lake's file-loader lock: one loader per lake, so raw sequences, the
manifest cache and the status file have one writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import structlog
from pyiceberg.catalog import Catalog

from insightloop.config import Config
from insightloop.contracts.errors import ContractError
from insightloop.contracts.registry import Registry
from insightloop.errors import ConfigError, InsightloopError
from insightloop.exports.apply import ExportStage
from insightloop.exports.contract import lookup
from insightloop.exports.fingerprint import sha256_of
from insightloop.exports.landing import LandedFile
from insightloop.exports.limits import BadRowLimit
from insightloop.exports.manifest import Manifest, raw_holds
from insightloop.exports.raw_load import FileIdentity, FileRecord, Progress, commit_file, raw_table
from insightloop.exports.reader import FileRejected, open_scan
from insightloop.exports.status import (
    DISCOVERED,
    LOADED,
    LOADING,
    REJECTED,
    UNCHANGED,
    FileStatus,
    StatusBook,
    now,
)
from insightloop.exports.status import state_directory as status_directory

_log = structlog.get_logger(__name__)
#: The lock file (under the lake) of whoever loads files: the loader, or ``insightloop load``.
LOCK = "file-loader.lock"


class LoadInterrupted(InsightloopError):
    """A load was stopped on purpose (SIGTERM) before its commit: nothing of it is in the
    lake, and the file loads again at the next start."""


@dataclass(frozen=True)
class LoadOutcome:
    file: LandedFile
    status: str
    seconds: float
    record: FileRecord | None = None
    reason: str | None = None
    sha256: str | None = None

    @property
    def rows(self) -> int:
        return self.record.rows if self.record is not None else 0

    @property
    def bad_rows(self) -> int:
        return self.record.bad_rows if self.record is not None else 0


def load_registry(config: Config) -> Registry:
    try:
        return Registry.load(config.contracts.dir)
    except ContractError as exc:
        raise ConfigError(f"contracts.dir: {exc}") from exc


class FileLoader:
    def __init__(self, config: Config, catalog: Catalog, registry: Registry | None = None) -> None:
        self._config = config
        self._catalog = catalog
        self._registry = registry or load_registry(config)
        directory = status_directory(config)
        self.manifest = Manifest(directory)
        self.statuses = StatusBook(directory)
        self.limit = BadRowLimit.from_config(config)
        self.stage = ExportStage(
            catalog,
            self._registry,
            self.manifest,
            directory,
            memory_limit=config.exports.memory_limit,
        )
        self._caught_up = False

    def catch_up(self) -> None:
        """Bring the manifest up to date from raw and finish stage 2 of loaded files (after a
        crash between the raw commit and the cleaned one)."""
        self.manifest.reconcile(raw_table(self._catalog))
        self.stage.sweep_staging()
        self.stage.apply_pending()
        self._caught_up = True

    def load(self, file: LandedFile, progress: Progress | None = None) -> LoadOutcome:
        if not self._caught_up:
            self.catch_up()
        started = time.perf_counter()
        base = FileStatus(
            uri=file.uri,
            source=file.source,
            entity=file.entity,
            status=LOADING,
            at=now(),
            size=file.size,
            modified=file.modified.isoformat() if file.modified else None,
        )
        self.statuses.set(base)
        sha = sha256_of(file.filesystem, file.path)
        try:
            outcome = self._load(file, sha, progress, started)
        except LoadInterrupted:
            self.statuses.set(
                msgspec.structs.replace(base, status=DISCOVERED, reason="interrupted", sha256=sha)
            )
            raise
        self.statuses.set(
            FileStatus(
                uri=base.uri,
                source=base.source,
                entity=base.entity,
                status=outcome.status,
                at=now(),
                size=file.size,
                modified=base.modified,
                sha256=sha,
                period=outcome.record.period if outcome.record else None,
                part=outcome.record.part if outcome.record else "",
                reason=outcome.reason,
                rows=outcome.rows,
                bad_rows=outcome.bad_rows,
                seconds=round(outcome.seconds, 3),
                seq=outcome.record.seq if outcome.record else None,
            )
        )
        _log.info(
            "export file",
            file=file.uri,
            status=outcome.status,
            rows=outcome.rows,
            bad_rows=outcome.bad_rows,
            reason=outcome.reason,
        )
        return outcome

    def _load(self, file: LandedFile, sha: str, progress: Progress | None, started: float) -> LoadOutcome:
        raw = raw_table(self._catalog)
        known = self.manifest.get(sha)
        if known is not None or raw_holds(raw, sha):
            reason = f"already loaded as raw sequence {known.seq}" if known else "already in raw"
            return LoadOutcome(file, UNCHANGED, time.perf_counter() - started, known, reason, sha)
        contract = lookup(self._registry, file.entity)
        if contract is None:
            reason = f"no contract export/{file.entity} in {self._config.contracts.dir}"
            return LoadOutcome(file, REJECTED, time.perf_counter() - started, None, reason, sha)
        period, part = file.period(), file.part()
        previous = self.manifest.current(file.source, file.entity, period, part)
        identity = FileIdentity(
            file.uri, sha, file.source, file.entity, period, contract.key, contract.version, file.size, part
        )
        try:
            scan = open_scan(
                file, contract, self._config.exports.batch_rows, self._config.exports.memory_limit
            )
            try:
                record = commit_file(
                    raw,
                    scan,
                    identity,
                    self.limit,
                    datetime.now(UTC),
                    previous.sha256 if previous is not None else None,
                    progress,
                    staging=status_directory(self._config),
                )
            finally:
                scan.close()
        except FileRejected as exc:
            return LoadOutcome(file, REJECTED, time.perf_counter() - started, None, str(exc), sha)
        self.manifest.add(record)
        self.stage.apply_pending()
        return LoadOutcome(file, LOADED, time.perf_counter() - started, record, None, sha)


def lock_path(config: Config) -> Path:
    from insightloop.lake.catalog import lake_root

    return lake_root(config) / LOCK
