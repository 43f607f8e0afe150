"""Stage 2 of the file loader: raw → ``quarantine.export_rows`` and ``cleaned.crm_<entity>``,
exactly once (the Staged shape of DESIGN.md).

Each loaded file is one raw sequence (its ``FileRecord.seq``). Files are applied in raw
order, a run at a time (``runs``: the consecutive files of one entity, a correction alone):
each file's bad rows into quarantine, then the run's good rows into cleaned in one merge (the
table is rewritten whole at each merge, so eight parts of a day cost one rewrite, not
eight). Each commit records the sequence it holds (``watermarks.RAW_SEQ``: a run's, its last
file's), and each table skips the sequences it already holds. Only then does the watermark
file move past the run: it only bounds what a restart looks at, so a lost or stale
watermark costs a longer look, never a duplicate. A crash anywhere is a restart.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
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


def runs(records: Sequence[FileRecord]) -> list[list[FileRecord]]:
    """``records`` (in raw order) cut into runs that cleaned merges at once: consecutive
    files of one entity; a correction (``FileRecord.replaces``) makes a run alone, as its
    merge takes out the rows of the file it replaces."""
    out: list[list[FileRecord]] = []
    for record in records:
        last = out[-1] if out else None
        joins = (
            last is not None
            and record.replaces is None
            and last[-1].replaces is None
            and last[-1].entity == record.entity
        )
        if joins and last is not None:
            last.append(record)
        else:
            out.append([record])
    return out


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
        """Apply every loaded file above the watermark, in raw order, a run at a time
        (``runs``: one cleaned rewrite for the files of an entity loaded together)."""
        done: list[Applied] = []
        mark = self.watermark()
        for run in runs([record for record in self._manifest.records() if record.seq > mark]):
            done.extend(self.apply(run))
            self._write_watermark(run[-1].seq)
            for record in run:
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

    def apply(self, run: Sequence[FileRecord]) -> list[Applied]:
        """Quarantine then cleaned for ``run`` (files of one entity, in raw order): each
        file's bad rows in a commit of its own, the files' good rows in one cleaned merge."""
        entity = run[0].entity
        contract = lookup(self._registry, entity)
        if contract is None:
            names = ", ".join(f"{record.uri} (raw sequence {record.seq})" for record in run)
            raise TerminalError(
                f"no contract export/{entity} for the loaded file(s) {names}: restore the contract, "
                "then restart"
            )
        raw = raw_table(self._catalog)
        applied: list[Applied] = []
        connection = connect(self._memory_limit)
        # Rows of cleaned have no order; DuckDB spills beyond its memory limit into here.
        connection.execute("SET preserve_insertion_order = false")
        connection.execute(f"SET temp_directory = {lit(str(self._spill))}")
        try:
            applied += self._quarantine(connection, raw, run)
            target = cleaned.load_table(self._catalog, contract) or cleaned.ensure_table(
                self._catalog, contract, list(contract.columns)
            )
            # A merge that committed before a crash holds its files: the rest of the run goes on.
            held = table_seq(target)
            todo = [record for record in run if record.seq > held]
            if todo:
                # Files an earlier attempt wrote but did not commit (it crashed) go first.
                for record in todo:
                    for folder in staging.journaled(self._state_dir, record.sha256, staging.CLEANED):
                        shutil.rmtree(local_path(folder), ignore_errors=True)
                live = self._manifest.live(entity)
                staged = [staging.staged(self._state_dir, record.sha256) for record in todo]
                applied.append(
                    cleaned.apply_files(
                        connection, target, raw, contract, todo, live, staged, self._journal(todo)
                    )
                )
            self._after(contract.table)
        finally:
            connection.close()
        _log.info(
            "export applied",
            files=[record.uri for record in run],
            seqs=[record.seq for record in run],
            tables=[a.table for a in applied],
        )
        return applied

    def _quarantine(
        self, connection: duckdb.DuckDBPyConnection, raw: Table, run: Sequence[FileRecord]
    ) -> list[Applied]:
        """Each file's bad rows into quarantine, in one commit recording its sequence; a
        correction's commit clears the bad rows of the file it replaces, even with none of
        its own."""
        table = quarantine.load_table(self._catalog)
        applied = []
        for record in run:
            if not record.bad_rows and not (record.replaces and table is not None):
                continue
            table = table or quarantine.ensure_table(self._catalog)
            if table_seq(table) < record.seq:
                rows = quarantine.bad_rows(connection, raw, record.seq, datetime.now(UTC))
                quarantine.append(table, rows, record.seq, record.replaces)
                applied.append(Applied(quarantine.EXPORT_QUARANTINE, rows.num_rows, None))
            self._after(quarantine.EXPORT_QUARANTINE)
        return applied

    def _journal(self, run: Sequence[FileRecord]) -> Callable[[str], None]:
        """Notes a folder a merge writes in the journal of each of its files (any of them
        waiting at a restart finds it)."""

        def note(folder: str) -> None:
            for record in run:
                staging.journal(self._state_dir, record.sha256, staging.CLEANED, folder)

        return note

    def _after(self, table: str) -> None:
        if self.after_table is not None:
            self.after_table(table)

    def _write_watermark(self, seq: int) -> None:
        self._watermark.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._watermark.with_suffix(".tmp")
        tmp.write_text(f"{seq}\n")
        os.replace(tmp, self._watermark)
