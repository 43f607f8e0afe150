"""What a commit that records no progress itself carries forward: every progress property
as ``committed_property`` finds it, and no label of another commit."""

from __future__ import annotations

from lake_support import commit, events_table
from pyiceberg.catalog import Catalog

from insightloop.lake.watermarks import (
    COMPACTION,
    LOG_POSITIONS,
    RAW_SEQ,
    committed_property,
    progress_properties,
)


def test_the_newest_value_of_each_progress_property_is_carried_and_labels_are_not(catalog: Catalog) -> None:
    table = events_table(catalog)
    assert progress_properties(table) == {}
    commit(table, 1, {RAW_SEQ: "1", LOG_POSITIONS: '{"shard-0":4}', "insightloop.cdc-lsn": "0/16B3748"})
    commit(table, 2, {RAW_SEQ: "2"})
    commit(table, 3, {})  # another writer's commit, recording nothing
    commit(table, 4, {COMPACTION: "rewrite-small-files", "owner": "someone else"})

    carried = progress_properties(table)

    assert carried == {RAW_SEQ: "2", LOG_POSITIONS: '{"shard-0":4}', "insightloop.cdc-lsn": "0/16B3748"}
    assert carried == {key: committed_property(table, key) for key in carried}
