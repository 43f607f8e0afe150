"""Stage 2 of the file loader: raw → ``quarantine.export_rows`` and ``cleaned.crm_<entity>``,
exactly once (the Staged shape of DESIGN.md).

Each loaded file is one raw sequence (its ``FileRecord.seq``). Files are applied in raw
order; for each, quarantine then cleaned, each table in one commit recording the sequence
(``watermarks.RAW_SEQ``), and each table skips a sequence it already holds. Only then does
the watermark file move past it: it only bounds what a restart looks at, so a lost or stale
watermark costs a longer look, never a duplicate. A crash anywhere is a restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from insightloop.contracts.registry import Registry
from insightloop.errors import TerminalError
from insightloop.exports import cleaned, quarantine, staging
from insightloop.exports.cleaned import Applied
from insightloop.exports.contract import lookup
from insightloop.exports.manifest import Manifest
from insightloop.exports.raw_load import FileRecord, raw_table
from insightloop.exports.raw_read import local_path
from insightloop.exports.reader import connect
from insightloop.exports.sql import lit
from insightloop.lake.watermarks import RAW_SEQ, committed_property

_log = structlog.get_logger(__name__)
WATERMARK = "watermark"


def table_seq(table: Table | None) -> int:
    if table is None:
        return 0
    value = committed_property(table, RAW_SEQ)
    return int(value) if value is not None else 0


class ExportStage:
    def __init__(
        self,
        catalog: Catalog,
        registry: Registry,
        manifest: Manifest,
        state_dir: Path,
        *,
        memory_limit: str,
    ) -> None:
        self._catalog = catalog
        self._registry = registry
        self._manifest = manifest
        self._state_dir = state_dir
        self._watermark = state_dir / WATERMARK
        self._spill = state_dir / "spill"
        self._memory_limit = memory_limit
        #: Called with a table's name after its commit (tests inject crashes here).
        self.after_table: Callable[[str], None] | None = None

    def watermark(self) -> int:
        try:
            return int(self._watermark.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def apply_pending(self) -> list[Applied]:
        """Apply every loaded file above the watermark, in raw order."""
        done: list[Applied] = []
        mark = self.watermark()
        for record in self._manifest.records():
            if record.seq <= mark:
                continue
            done.extend(self.apply(record))
            self._write_watermark(record.seq)
            staging.remove(self._state_dir, record.sha256)
        return done

    def sweep_staging(self) -> int:
        """Delete the load folders no loaded file waits for (a file applied before a crash,
        a load killed before its raw commit, with the raw data files it had written); how
        many."""
        mark = self.watermark()
        records = self._manifest.records()
        waiting = {record.sha256 for record in records if record.seq > mark}
        committed = {record.sha256 for record in records}
        io = raw_table(self._catalog).io

        def delete(path: str) -> None:
            with contextlib.suppress(OSError):
                io.delete(path)

        return staging.sweep(self._state_dir, waiting, committed, delete)

    def apply(self, record: FileRecord) -> list[Applied]:
        contract = lookup(self._registry, record.entity)
        if contract is None:
            raise TerminalError(
                f"no contract export/{record.entity} for the loaded file {record.uri} (raw sequence "
                f"{record.seq}): restore the contract, then restart"
            )
        raw = raw_table(self._catalog)
        applied: list[Applied] = []
        connection = connect(self._memory_limit)
        # Rows of cleaned have no order; DuckDB spills beyond its memory limit into here.
        connection.execute("SET preserve_insertion_order = false")
        connection.execute(f"SET temp_directory = {lit(str(self._spill))}")
        try:
            # A correction clears the bad rows of the file it replaces, even with none of its own.
            held = quarantine.load_table(self._catalog)
            if record.bad_rows or (record.replaces and held is not None):
                table = held or quarantine.ensure_table(self._catalog)
                if table_seq(table) < record.seq:
                    rows = quarantine.bad_rows(connection, raw, record.seq, datetime.now(UTC))
                    quarantine.append(table, rows, record.seq, record.replaces)
                    applied.append(Applied(quarantine.EXPORT_QUARANTINE, rows.num_rows, None))
                self._after(quarantine.EXPORT_QUARANTINE)
            target = cleaned.load_table(self._catalog, contract) or cleaned.ensure_table(
                self._catalog, contract, list(contract.columns)
            )
            if table_seq(target) < record.seq:
                # Files an earlier attempt wrote but did not commit (it crashed) go first.
                for folder in staging.journaled(self._state_dir, record.sha256, staging.CLEANED):
                    shutil.rmtree(local_path(folder), ignore_errors=True)
                live = self._manifest.live(record.entity)
                staged = staging.staged(self._state_dir, record.sha256)
                journal = partial(staging.journal, self._state_dir, record.sha256, staging.CLEANED)
                applied.append(
                    cleaned.apply_file(connection, target, raw, contract, record, live, staged, journal)
                )
            self._after(contract.table)
        finally:
            connection.close()
        _log.info("export applied", file=record.uri, seq=record.seq, tables=[a.table for a in applied])
        return applied

    def _after(self, table: str) -> None:
        if self.after_table is not None:
            self.after_table(table)

    def _write_watermark(self, seq: int) -> None:
        self._watermark.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._watermark.with_suffix(".tmp")
        tmp.write_text(f"{seq}\n")
        os.replace(tmp, self._watermark)
