"""Progress recorded inside Iceberg commits (snapshot summary properties).

A writer records how far it has read (log positions, raw ingest sequence) in the same
atomic commit as the data it produced; after a crash it resumes from what the table says.
Readers walk back through the current snapshot's ancestors to the newest snapshot that
carries the key.

Every ``insightloop.*`` property is progress except the labels (``LABELS``), which name
what one commit did. A commit of ours that records no progress itself (compaction) carries
the table's progress forward (``progress_properties``), so the current snapshot always
holds it: expiring older snapshots then loses nothing, and ``progress_ancestry`` names the
snapshots that must survive expiry on tables written before commits carried progress.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata
from pyiceberg.table.snapshots import Snapshot

#: Every snapshot property we write starts with this.
PREFIX = "insightloop."
#: Log positions consumed into a table: JSON object {shard: last offset included}.
LOG_POSITIONS = "insightloop.log-positions"
#: Highest raw ingest sequence a table includes (raw itself: the last one it assigned).
RAW_SEQ = "insightloop.raw-seq"
#: Labels a compaction commit, for people reading a table's history.
COMPACTION = "insightloop.compaction"
#: Properties that describe the one commit carrying them: never carried forward.
LABELS = frozenset({COMPACTION})


def committed_property(table: Table, key: str) -> str | None:
    """The value of ``key`` in the newest snapshot (current or an ancestor) that has it."""
    metadata = table.metadata
    snapshot = metadata.current_snapshot()
    while snapshot is not None:
        summary = snapshot.summary
        if summary is not None and key in summary.additional_properties:
            return summary.additional_properties[key]
        if snapshot.parent_snapshot_id is None:
            return None
        snapshot = metadata.snapshot_by_id(snapshot.parent_snapshot_id)
    return None


def progress_properties(table: Table) -> dict[str, str]:
    """Every progress property of ``table`` with the value ``committed_property`` finds for it:
    what a commit that records no progress itself must carry forward."""
    found: dict[str, str] = {}
    for snapshot in _ancestors(table.metadata):
        for key, value in _progress_of(snapshot).items():
            found.setdefault(key, value)
    return found


def progress_ancestry(table: Table) -> list[int]:
    """Ids of the current snapshot and its ancestors down to the oldest one that
    ``committed_property`` reads a progress value from: expiring any of them could lose
    progress. Just the current snapshot when it carries all of it (as our commits do)."""
    chain: list[int] = []
    needed = 0
    seen: set[str] = set()
    for snapshot in _ancestors(table.metadata):
        chain.append(snapshot.snapshot_id)
        new = _progress_of(snapshot).keys() - seen
        if new:
            seen |= new
            needed = len(chain)
    return chain[:needed] or chain[:1]


def _progress_of(snapshot: Snapshot) -> dict[str, str]:
    extra = snapshot.summary.additional_properties if snapshot.summary is not None else {}
    return {k: v for k, v in extra.items() if k.startswith(PREFIX) and k not in LABELS}


def _ancestors(metadata: TableMetadata) -> Iterator[Snapshot]:
    """The current snapshot, its parent, … while they exist (expiry cuts the chain)."""
    by_id = {snapshot.snapshot_id: snapshot for snapshot in metadata.snapshots}
    snapshot = metadata.current_snapshot()
    while snapshot is not None:
        yield snapshot
        parent = snapshot.parent_snapshot_id
        snapshot = by_id.get(parent) if parent is not None else None
