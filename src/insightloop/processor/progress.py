"""How far stage 1 has read the log, as recorded in the raw table's own commits.

The raw table's snapshot properties are the source of truth (never the log's advisory
checkpoints): ``LOG_POSITIONS`` (JSON {shard: last offset included}) and ``RAW_SEQ`` (the
last ingest sequence number assigned). Both are written in the same atomic commit as the
rows they describe, so after a crash stage 1 resumes exactly after its last commit.
"""

from __future__ import annotations

import msgspec
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata

from insightloop.errors import TerminalError
from insightloop.lake.watermarks import LOG_POSITIONS, RAW_SEQ, committed_property

_positions_decoder = msgspec.json.Decoder(dict[str, int])


class RawProgress(msgspec.Struct, frozen=True):
    positions: dict[str, int]
    seq: int

    def after(self, shard: str) -> int | None:
        """The offset to read ``shard`` after (None: from its start)."""
        return self.positions.get(shard)

    def advanced(self, read: dict[str, int]) -> RawProgress:
        """The progress once the rows of positions ``read`` are committed as the next sequence."""
        return RawProgress({**self.positions, **read}, self.seq + 1)

    def properties(self) -> dict[str, str]:
        """The snapshot properties recording this progress."""
        return {
            LOG_POSITIONS: msgspec.json.encode(dict(sorted(self.positions.items()))).decode(),
            RAW_SEQ: str(self.seq),
        }


def committed_progress(table: Table) -> RawProgress:
    """The progress recorded by the raw table's newest commit that recorded one."""
    return _parse(table.name(), committed_property(table, LOG_POSITIONS), committed_property(table, RAW_SEQ))


def progress_before(metadata: TableMetadata, snapshot_id: int) -> RawProgress | None:
    """The progress recorded at the parent of snapshot ``snapshot_id`` (or further back)."""
    snapshot = metadata.snapshot_by_id(snapshot_id)
    parent_id = snapshot.parent_snapshot_id if snapshot is not None else None
    positions: str | None = None
    seq: str | None = None
    while parent_id is not None:
        parent = metadata.snapshot_by_id(parent_id)
        if parent is None:
            return None  # history expired: cannot tell
        extra = parent.summary.additional_properties if parent.summary is not None else {}
        if RAW_SEQ in extra:
            positions, seq = extra.get(LOG_POSITIONS), extra[RAW_SEQ]
            break
        parent_id = parent.parent_snapshot_id
    return _parse(("raw",), positions, seq)


def _parse(table: tuple[str, ...], positions: str | None, seq: str | None) -> RawProgress:
    try:
        return RawProgress(
            _positions_decoder.decode(positions) if positions else {},
            int(seq) if seq else 0,
        )
    except (msgspec.DecodeError, ValueError) as exc:
        name = ".".join(table)
        raise TerminalError(
            f"raw table {name} records unreadable progress ({positions!r}, {seq!r}): {exc}"
        ) from exc
