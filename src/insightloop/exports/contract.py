"""An export contract (``contracts/export/<entity>/<version>.json``) read for loading files.

The JSON Schema's ``properties`` are the entity's columns; each column's type comes from its
schema (``"null"`` in a type list aside): ``integer`` → long, ``number`` → double,
``boolean`` → boolean, ``string`` with ``format: date-time`` → timestamptz, with
``format: date`` → date, any other ``string`` (or no type) → string. ``required`` columns
must be in every file's header and hold a value in every row. The contract's own keys
(``x-insightloop-export``):

- ``primary_key`` (list of columns): rows are deduplicated by it in ``cleaned.crm_<entity>``;
- ``updated_at`` (column): the latest version of a key wins by it, then by load order;
- ``subject_keys`` ({``user_id``|``anonymous_id``|``account_id``|``email``: column}): who a row
  is about, for deletion requests (``email`` is stored as its sha256);
- ``new_columns``: what a column the contract does not name does: ``"add"`` (default: a
  string column is added to the cleaned table in place), ``"ignore"`` (kept in raw only) or
  ``"reject"`` (the file is rejected);
- ``csv``: ``delimiter``, ``quote``, ``escape``, ``encoding`` (``utf-8``, ``latin-1``,
  ``utf-16``) of the entity's CSV files; a UTF-8 byte-order mark is always accepted.

Values arrive as text: a row whose value of a typed column does not cast to its type, or
whose required value is missing, is a bad row (the rows are checked in DuckDB, not by the
JSON Schema validator, which would need a Python loop over rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.types import (
    BooleanType,
    DateType,
    DoubleType,
    IcebergType,
    LongType,
    StringType,
    TimestamptzType,
)

from insightloop.contracts.registry import EXPORT_KEY, Contract, Registry

KIND = "export"
#: Prefix of the cleaned table of an export entity (``lake.ownership.EXPORT_PREFIX``).
TABLE_PREFIX = "crm_"
NEW_COLUMN_POLICIES = ("add", "ignore", "reject")
SUBJECT_KEYS = ("user_id", "anonymous_id", "account_id", "email")


@dataclass(frozen=True)
class ColumnType:
    """A contract column's type: DuckDB's name for casting text, and Iceberg's."""

    sql: str
    iceberg: IcebergType


STRING = ColumnType("VARCHAR", StringType())
_TYPES = {
    "integer": ColumnType("BIGINT", LongType()),
    "number": ColumnType("DOUBLE", DoubleType()),
    "boolean": ColumnType("BOOLEAN", BooleanType()),
    "date-time": ColumnType("TIMESTAMPTZ", TimestamptzType()),
    "date": ColumnType("DATE", DateType()),
}


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    encoding: str = "utf-8"


@dataclass(frozen=True)
class ExportContract:
    entity: str
    version: str
    columns: dict[str, ColumnType]
    primary_key: tuple[str, ...]
    updated_at: str | None
    required: frozenset[str]
    subject_keys: dict[str, str] = field(default_factory=dict)
    new_columns: str = "add"
    csv: CsvOptions = field(default_factory=CsvOptions)

    @property
    def key(self) -> str:
        """``export/contacts/1-0-0``."""
        return f"{KIND}/{self.entity}/{self.version}"

    @property
    def table(self) -> str:
        """``cleaned.crm_<entity>``."""
        return f"cleaned.{TABLE_PREFIX}{self.entity}"

    @property
    def must_have(self) -> frozenset[str]:
        """Columns every file and every row must have: the required ones and the key."""
        return self.required | frozenset(self.primary_key)

    def column_type(self, name: str) -> ColumnType:
        """The type of a column (a column the contract does not name is a string)."""
        return self.columns.get(name, STRING)


def from_contract(contract: Contract) -> ExportContract:
    """The export view of a registry contract (its keys were checked when it was loaded)."""
    schema = contract.schema
    extra: Mapping[str, Any] = schema[EXPORT_KEY]
    csv: Mapping[str, Any] = extra.get("csv", {})
    policy = str(extra.get("new_columns", "add"))
    if policy not in NEW_COLUMN_POLICIES:
        policy = "add"
    return ExportContract(
        entity=contract.name,
        version=str(contract.version),
        columns={name: _column_type(spec) for name, spec in schema["properties"].items()},
        primary_key=tuple(extra["primary_key"]),
        updated_at=extra.get("updated_at"),
        required=frozenset(schema.get("required", ())),
        subject_keys={k: v for k, v in extra.get("subject_keys", {}).items() if k in SUBJECT_KEYS},
        new_columns=policy,
        csv=CsvOptions(**{k: str(v) for k, v in csv.items() if k in CsvOptions.__dataclass_fields__}),
    )


def lookup(registry: Registry, entity: str) -> ExportContract | None:
    """The latest export contract of ``entity`` (None: there is none)."""
    found = registry.lookup(KIND, entity)
    return from_contract(found) if found is not None else None


def _column_type(spec: Any) -> ColumnType:
    if not isinstance(spec, Mapping):
        return STRING
    kinds = spec.get("type")
    names = [kinds] if isinstance(kinds, str) else [k for k in (kinds or []) if k != "null"]
    if len(names) != 1:
        return STRING
    if names[0] == "string":
        return _TYPES.get(str(spec.get("format")), STRING)
    return _TYPES.get(names[0], STRING)
