"""Keeping each lake table's metadata small: snapshot expiry and old metadata files.

pyiceberg 0.12 deep-copies a table's whole metadata several times per commit, so a commit
takes time in proportion to the snapshots the table keeps, and the processor commits to
each table about once a second. ``expire_snapshots`` drops the snapshots older than the
retention, always keeping the newest ``min_count`` of the current snapshot's line, every
branch or tag head, and every snapshot a table's progress is read from
(``watermarks.progress_ancestry``: only the current one, once commits carry progress).

Metadata only. pyiceberg's expire-snapshots (``table.maintenance.expire_snapshots()``)
removes snapshots from the table metadata and deletes no file: neither data files nor the
manifests and manifest lists that only expired snapshots referenced. That keeps a reader
safe that pinned an older snapshot's files (``warehouse.pinning``), but disk use does not
shrink: deleting files that no live snapshot references is a later job (see PITFALLS,
apache/iceberg-python#2604).

Old metadata files: every commit writes a new metadata JSON file. With
``write.metadata.delete-after-commit.enabled`` pyiceberg deletes, after each commit, the
files that fall out of the table's metadata log (the last
``write.metadata.previous-versions-max``); it does so in ``Table._do_commit``, for every
catalog, the SQL one included. ``ensure_table_properties`` sets both on every lake table
(raw has them from creation). Files that left the log before the properties were set
stay on disk for the garbage collector.

Run it in the process that commits (the processor's loop, between its commits): pyiceberg
does not retry a conflicting expiry, it raises ``CommitFailedException``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.snapshots import ancestors_of

from insightloop.config import LakeConfig
from insightloop.lake.catalog import NAMESPACES, lake_tables
from insightloop.lake.ownership import Owns, any_table
from insightloop.lake.watermarks import progress_ancestry

_log = structlog.get_logger(__name__)

#: Table properties of every lake table: pyiceberg deletes metadata files older than the last 20.
METADATA_PROPERTIES = {
    TableProperties.METADATA_DELETE_AFTER_COMMIT_ENABLED: "true",
    TableProperties.METADATA_PREVIOUS_VERSIONS_MAX: "20",
    # Appends merge small manifests (else one manifest per commit piles up in every
    # snapshot, and planning a scan reads them all).
    TableProperties.MANIFEST_MERGE_ENABLED: "true",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SnapshotRetention(msgspec.Struct, frozen=True):
    """Expire snapshots older than ``minutes``, keeping at least the newest ``min_count``."""

    minutes: float
    min_count: int

    @classmethod
    def from_config(cls, lake: LakeConfig) -> SnapshotRetention:
        return cls(lake.snapshot_retention_minutes, lake.snapshot_retention_min_count)


class Maintained(msgspec.Struct, frozen=True):
    """What maintenance did to one table."""

    table: str
    expired: int
    snapshots: int


def expiry_cutoff(table: Table, retention: SnapshotRetention, now: float) -> int:
    """Unix time in ms before which ``retention`` lets the snapshots of ``table`` go at ``now``:
    the retention's cutoff, moved back to spare the newest ``min_count`` of the current line
    and the snapshots the table's progress is read from (all of them contiguous and newest
    in our linear tables, so the snapshots expired are exactly those not kept)."""
    metadata = table.metadata
    kept = set(progress_ancestry(table))
    kept.update(
        s.snapshot_id
        for s in itertools.islice(ancestors_of(metadata.current_snapshot(), metadata), retention.min_count)
    )
    cutoff = int((now - retention.minutes * 60) * 1000)
    return min([cutoff, *(s.timestamp_ms for s in metadata.snapshots if s.snapshot_id in kept)])


def expire_snapshots(table: Table, retention: SnapshotRetention, now: float | None = None) -> int:
    """Expire the snapshots ``retention`` lets go (metadata only, one commit); returns how many.

    ``older_than`` rather than ``by_ids``: pyiceberg 0.12 rebuilds the whole table metadata
    for every id given (48 s to expire 1,000 snapshots) but only a few times for
    ``older_than``. Either spares branch and tag heads, the current snapshot among them."""
    cutoff = expiry_cutoff(table, retention, time.time() if now is None else now)
    before = len(table.metadata.snapshots)
    if any(snapshot.timestamp_ms < cutoff for snapshot in table.metadata.snapshots):
        table.maintenance.expire_snapshots().older_than(_EPOCH + timedelta(milliseconds=cutoff)).commit()
    return before - len(table.metadata.snapshots)


def ensure_table_properties(table: Table) -> bool:
    """Set ``METADATA_PROPERTIES`` on ``table`` where they differ; True if it had to."""
    missing = {key: value for key, value in METADATA_PROPERTIES.items() if table.properties.get(key) != value}
    if missing:
        with table.transaction() as transaction:
            transaction.set_properties(missing)
    return bool(missing)


def maintain(
    catalog: Catalog,
    retention: SnapshotRetention,
    *,
    namespaces: Sequence[str] = NAMESPACES,
    owns: Owns = any_table,
    now: float | None = None,
) -> list[Maintained]:
    """Set the metadata properties on, and expire old snapshots of, every table of
    ``namespaces`` that ``owns`` says the calling process writes."""
    done: list[Maintained] = []
    for identifier in lake_tables(catalog, namespaces):
        if not owns(identifier):
            continue
        table = catalog.load_table(identifier)
        ensure_table_properties(table)
        expired = expire_snapshots(table, retention, now)
        name = ".".join(identifier)
        if expired:
            _log.info("snapshots expired", table=name, expired=expired, kept=len(table.metadata.snapshots))
        done.append(Maintained(name, expired, len(table.metadata.snapshots)))
    return done
