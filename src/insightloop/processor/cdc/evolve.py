"""A batch's schema evolution for one source table: from the lake's columns and the
columns its changes declare (in order), the columns after the batch, what to add and what
to widen (``pgtypes.type_change``). An incompatible declaration changes nothing here: the
fold quarantines those values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pyiceberg.types import IcebergType

from insightloop.processor.cdc.events import Change
from insightloop.processor.cdc.pgtypes import iceberg_type, type_change


@dataclass(slots=True)
class Evolution:
    #: Every source column after the batch, name → type, in table order.
    columns: dict[str, IcebergType]
    added: list[tuple[str, IcebergType]] = field(default_factory=list)
    promoted: list[tuple[str, IcebergType]] = field(default_factory=list)
    #: The primary key the changes declare (empty: none declared).
    key: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.promoted)


def plan(current: Mapping[str, IcebergType], changes: Iterable[Change]) -> Evolution:
    evolution = Evolution(dict(current))
    columns = evolution.columns
    promoted: dict[str, IcebergType] = {}
    previous: list[tuple[str, str]] | None = None
    for change in changes:
        declared = change.declared()
        if declared == previous:
            continue  # most changes repeat their predecessor's columns: nothing new to learn
        previous = declared
        key = [c.name for c in change.columns if c.key]
        if key:
            evolution.key = key
        for name, pg_type in declared:
            wanted = iceberg_type(pg_type)
            have = columns.get(name)
            if have is None:
                columns[name] = wanted
                evolution.added.append((name, wanted))
            elif type_change(have, wanted) == "promote":
                columns[name] = wanted
                if name not in {n for n, _ in evolution.added}:
                    promoted[name] = wanted
                else:
                    evolution.added = [(n, wanted if n == name else t) for n, t in evolution.added]
    evolution.promoted = list(promoted.items())
    return evolution
