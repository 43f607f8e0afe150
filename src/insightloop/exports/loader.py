"""Loading one export file, whole or not at all, never twice: the core that both
``insightloop load`` and the file loader process run.

For a file: hash its bytes (sha256, streamed); if the manifest (or raw itself) already has
that hash, it is ``unchanged``, a no-op. Otherwise check it against its entity's export
contract, stream its rows into raw and commit them at once (``raw_load``): that commit is
the load. A file that cannot be read to its end (a truncated gzip), whose header breaks its
contract, or whose bad rows exceed the limit is ``rejected`` with the reason, and nothing of
it is committed (``FileLoader.commit``). Then stage 2 (``apply``) derives quarantine and
cleaned from raw (``FileLoader.finish``): for one file (``FileLoader.load``), or for the files
loaded together, whose good rows cleaned takes in one merge.

The caller holds the lake's file-loader lock: one loader per lake, so raw sequences, the
manifest cache and the status file have one writer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    FAILED,
    LOADED,
    LOADING,
    REJECTED,
    UNCHANGED,
    FileStatus,
    StatusBook,
    now,
)
from insightloop.exports.status import state_directory as status_directory
from insightloop.exports.write_errors import WRITE_ERRORS, first_line

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
        crash between the raw commit and the cleaned one, or a merge that could not write).
        Then a file left ``loading`` or ``failed`` whose content (sha256) is in raw and merged
        is ``loaded``: it is not looked at again, to be found ``unchanged``."""
        self.manifest.reconcile(raw_table(self._catalog))
        self.stage.sweep_staging()
        self.stage.apply_pending()
        merged = self.stage.watermark()
        for status in self.statuses.all():
            record = self.manifest.get(status.sha256) if status.sha256 else None
            if status.status in (LOADING, FAILED) and record is not None and record.seq <= merged:
                self._status(
                    msgspec.structs.replace(
                        status,
                        status=LOADED,
                        at=now(),
                        period=record.period,
                        part=record.part,
                        reason=None,
                        rows=record.rows,
                        bad_rows=record.bad_rows,
                        seq=record.seq,
                    )
                )
        self._caught_up = True

    def catch_up_if_needed(self) -> None:
        """``catch_up``, unless done since the start or the last failure to write; if the
        lake still cannot be written, it is logged and tried again next time (loading files
        does not need it: raw and the manifest decide what is loaded)."""
        if self._caught_up:
            return
        try:
            self.catch_up()
        except WRITE_ERRORS as exc:
            _log.warning("catch-up could not write the lake; it is tried again", error=first_line(exc))

    def load(self, file: LandedFile, progress: Progress | None = None) -> LoadOutcome:
        """Load ``file``: both stages (``commit``, then ``finish``)."""
        return self.finish([self.commit(file, progress)])[0]

    def commit(self, file: LandedFile, progress: Progress | None = None) -> LoadOutcome:
        """Stage 1 of ``file``: its raw commit (or why there is none). An unchanged or
        rejected file has its final status; a loaded one stays ``loading`` until ``finish``
        has merged it into quarantine and cleaned."""
        self.catch_up_if_needed()
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
        self._status(base)
        sha = sha256_of(file.filesystem, file.path)
        # With its content's hash: a restart knows a loading file whose content raw holds.
        self._status(msgspec.structs.replace(base, sha256=sha))
        try:
            outcome = self._load(file, sha, progress, started)
        except LoadInterrupted:
            self._status(msgspec.structs.replace(base, status=DISCOVERED, reason="interrupted", sha256=sha))
            raise
        if outcome.status != LOADED:
            self._settle(outcome)
        return outcome

    def finish(self, outcomes: Sequence[LoadOutcome]) -> list[LoadOutcome]:
        """Stage 2 of the files ``commit`` loaded (one cleaned merge per run of an entity's
        files: ``apply.runs``), then their final statuses; ``outcomes`` again, each loaded
        file's seconds with its share of stage 2 (by its rows)."""
        loaded = [outcome for outcome in outcomes if outcome.status == LOADED]
        if not loaded:
            return list(outcomes)
        started = time.perf_counter()
        failure = None
        try:
            self.stage.apply_pending()
        except WRITE_ERRORS as exc:  # writing the lake: the files are in raw, merged next time
            self._caught_up = False
            failure = f"in raw, but its merge into cleaned failed: {first_line(exc)}; it is merged again"
        spent = time.perf_counter() - started
        merged = self.stage.watermark()  # after a failure, the runs before the failing one
        rows = [outcome.rows + outcome.bad_rows for outcome in loaded]
        share = {
            id(outcome): spent * (n / sum(rows) if sum(rows) else 1 / len(loaded))
            for outcome, n in zip(loaded, rows, strict=True)
        }
        done = []
        for outcome in outcomes:
            if outcome.status == LOADED:
                if failure is not None and outcome.record is not None and outcome.record.seq > merged:
                    outcome = replace(outcome, status=FAILED, reason=failure)
                elif failure is None:
                    outcome = replace(outcome, seconds=outcome.seconds + share[id(outcome)])
                self._settle(outcome)
            done.append(outcome)
        return done

    def merge_due(self, committed: Sequence[LoadOutcome]) -> bool:
        """Whether the files ``commit`` loaded add up to ``exports.merge_after_mb``: time to
        ``finish`` them (callers also finish what is left when they run out of files)."""
        size = sum(outcome.file.size for outcome in committed if outcome.status == LOADED)
        return size >= self._config.exports.merge_after_mb * 1_000_000

    def _status(self, status: FileStatus) -> None:
        """Write a file's status; one that cannot be written (a full disk) is logged: the
        lake, not the status file, says what is loaded."""
        try:
            self.statuses.set(status)
        except OSError as exc:
            _log.warning("file status not written", file=status.uri, error=first_line(exc))

    def _settle(self, outcome: LoadOutcome) -> None:
        """The file's final status, and a log line."""
        file, record = outcome.file, outcome.record
        status = FileStatus(
            uri=file.uri,
            source=file.source,
            entity=file.entity,
            status=outcome.status,
            at=now(),
            size=file.size,
            modified=file.modified.isoformat() if file.modified else None,
            sha256=outcome.sha256,
            period=record.period if record else None,
            part=record.part if record else "",
            reason=outcome.reason,
            rows=outcome.rows,
            bad_rows=outcome.bad_rows,
            seconds=round(outcome.seconds, 3),
            seq=record.seq if record else None,
        )
        self._status(status)
        _log.info(
            "export file",
            file=file.uri,
            status=outcome.status,
            rows=outcome.rows,
            bad_rows=outcome.bad_rows,
            reason=outcome.reason,
        )

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
        except WRITE_ERRORS as exc:  # writing the lake (reading the file is FileRejected)
            self._caught_up = False  # the next look sweeps what the load left in staging
            reason = f"{first_line(exc)}; nothing of the file is committed: it loads again"
            return LoadOutcome(file, FAILED, time.perf_counter() - started, None, reason, sha)
        try:
            self.manifest.add(record)
        except WRITE_ERRORS as exc:  # committed: the next look records it from raw, and merges it
            self._caught_up = False
            reason = f"in raw, but not recorded: {first_line(exc)}; it is recorded and merged next time"
            return LoadOutcome(file, FAILED, time.perf_counter() - started, None, reason, sha)
        return LoadOutcome(file, LOADED, time.perf_counter() - started, record, None, sha)


def lock_path(config: Config) -> Path:
    from insightloop.lake.catalog import lake_root

    return lake_root(config) / LOCK
