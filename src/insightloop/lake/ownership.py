"""Which process writes each lake table. Each table has exactly one writer, and only its
writer compacts it and expires its snapshots: maintenance by another process would race the
writer's commits (and a compaction retried on top of them could carry stale progress
properties forward).

- the processor: ``raw.*`` of the SDK path (``raw.sdk_events``);
- the cleaner (or the processor, with ``processor.stage2 = "inline"``): ``cleaned.*`` and
  ``quarantine.*`` of the SDK path;
- the CDC processor: ``raw.cdc_changes``, ``quarantine.cdc_changes`` and ``cleaned.app_*``;
- the file loader: ``raw.export_rows``, ``quarantine.export_rows`` and ``cleaned.crm_*``.

``app_`` and ``crm_`` are reserved in ``cleaned``: a track event whose table name would start
with one of them gets another name (see ``processor.cleaned.naming``).
"""

from __future__ import annotations

from collections.abc import Callable

from pyiceberg.typedef import Identifier

PROCESSOR = "processor"
CLEANER = "cleaner"
CDC_PROCESSOR = "cdc-processor"
FILE_LOADER = "file-loader"

CDC_TABLES = frozenset({"raw.cdc_changes", "quarantine.cdc_changes"})
#: Table names in ``cleaned`` that start with this belong to CDC.
CDC_PREFIX = "app_"
EXPORT_TABLES = frozenset({"raw.export_rows", "quarantine.export_rows"})
#: Table names in ``cleaned`` that start with this belong to the file loader.
EXPORT_PREFIX = "crm_"
#: Prefixes in ``cleaned`` that SDK event tables never take.
RESERVED_PREFIXES = (CDC_PREFIX, EXPORT_PREFIX)

Owns = Callable[[Identifier], bool]


def _name(identifier: Identifier | str) -> str:
    return identifier if isinstance(identifier, str) else ".".join(identifier[-2:])


def writer(identifier: Identifier | str) -> str:
    """The process that writes (and so maintains) a lake table."""
    name = _name(identifier)
    namespace, _, table = name.partition(".")
    if name in CDC_TABLES or (namespace == "cleaned" and table.startswith(CDC_PREFIX)):
        return CDC_PROCESSOR
    if name in EXPORT_TABLES or (namespace == "cleaned" and table.startswith(EXPORT_PREFIX)):
        return FILE_LOADER
    if namespace == "raw":
        return PROCESSOR
    return CLEANER


def written_by(*writers: str) -> Owns:
    """A predicate: whether one of ``writers`` writes the table."""
    wanted = frozenset(writers)
    return lambda identifier: writer(identifier) in wanted


def any_table(identifier: Identifier) -> bool:
    """Every table (for a lake with one writer, e.g. in tests and tools)."""
    return True
