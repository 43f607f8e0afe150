"""Progress recorded inside Iceberg commits (snapshot summary properties).

A writer records how far it has read (log positions, raw ingest sequence) in the same
atomic commit as the data it produced; after a crash it resumes from what the table says.
Readers walk back through the current snapshot's ancestors to the newest snapshot that
carries the key, so commits by other code (compaction, deletes) need not copy it.
"""

from __future__ import annotations

from pyiceberg.table import Table

#: Log positions consumed into a table: JSON object {shard: last offset included}.
LOG_POSITIONS = "insightloop.log-positions"
#: Highest raw ingest sequence a table includes (raw itself: the last one it assigned).
RAW_SEQ = "insightloop.raw-seq"


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
