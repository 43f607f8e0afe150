"""PostgreSQL column types (as ``format_type`` prints them) → Iceberg types, and what a
type change does to a lake column.

=========================================  ==============================================
PostgreSQL                                 Iceberg
=========================================  ==============================================
smallint, integer (serial)                 int
bigint (bigserial)                         long
real / double precision                    float / double
numeric(p,s)                               decimal(p,s)
numeric (no precision)                     string: exact at any scale; decimal(38,9)
                                           would round or overflow values PostgreSQL keeps
boolean                                    boolean
date                                       date
timestamp [(n)] without time zone          timestamp
timestamp [(n)] with time zone             timestamptz
bytea                                      binary
text, varchar, char, uuid, json(b),        string (arrays and JSON as JSON text)
arrays, enums, time, interval, others
=========================================  ==============================================

A new PostgreSQL type for an existing column is, in this order:
- ``same``: it writes into the column as is (also a narrowing: integer into a long column,
  numeric(8,2) into decimal(12,2), varchar(20) into string);
- ``promote``: Iceberg widens the column in place (int → long, float → double,
  decimal(p,s) → decimal(P,s) with P > p);
- ``incompatible``: anything else (text → integer, integer → numeric, a scale change…):
  the values go to quarantine, the column keeps its type.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
)

Change = Literal["same", "promote", "incompatible"]

_NUMERIC = re.compile(r"^(?:numeric|decimal)\((\d+)(?:,\s*(\d+))?\)$")
_FIXED: dict[str, IcebergType] = {
    "smallint": IntegerType(),
    "integer": IntegerType(),
    "int": IntegerType(),
    "bigint": LongType(),
    "real": FloatType(),
    "double precision": DoubleType(),
    "boolean": BooleanType(),
    "date": DateType(),
    "bytea": BinaryType(),
}


@functools.lru_cache(maxsize=1024)
def iceberg_type(pg_type: str) -> IcebergType:
    """The Iceberg type a column of PostgreSQL type ``pg_type`` is stored as."""
    name = pg_type.strip().lower()
    if name.endswith("[]"):
        return StringType()
    fixed = _FIXED.get(name)
    if fixed is not None:
        return fixed
    numeric = _NUMERIC.match(name)
    if numeric is not None:
        precision = int(numeric.group(1))
        scale = int(numeric.group(2) or 0)
        if precision <= 38:
            return DecimalType(precision, scale)
        return StringType()
    if name.startswith("timestamp"):
        return TimestamptzType() if name.endswith("with time zone") else TimestampType()
    return StringType()


@functools.lru_cache(maxsize=1024)
def is_json(pg_type: str | None) -> bool:
    """Whether a column of ``pg_type`` is stored as JSON text (json, jsonb, arrays): every
    value JSON-encoded, a bare JSON string included (``"plain"``, not ``plain``)."""
    if pg_type is None:
        return False
    name = pg_type.strip().lower()
    return name in ("json", "jsonb") or name.endswith("[]")


def type_change(current: IcebergType, new: IcebergType) -> Change:
    """What storing values of ``new`` in a column of type ``current`` takes."""
    if current == new:
        return "same"
    if isinstance(current, LongType) and isinstance(new, IntegerType):
        return "same"
    if isinstance(current, DoubleType) and isinstance(new, FloatType):
        return "same"
    if isinstance(current, DecimalType) and isinstance(new, DecimalType) and current.scale == new.scale:
        return "same" if new.precision <= current.precision else "promote"
    if isinstance(current, IntegerType) and isinstance(new, LongType):
        return "promote"
    if isinstance(current, FloatType) and isinstance(new, DoubleType):
        return "promote"
    return "incompatible"
