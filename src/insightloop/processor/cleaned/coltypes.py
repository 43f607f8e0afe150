"""The type policy of the columns made from properties, traits and context: every decision
about a value's column type is here (a contract's hints, ``hints``, choose among these kinds).

- A JSON value's own type: string → ``string``; true/false → ``boolean``; a number with no
  fractional part → ``long`` (JSON has one number type and JavaScript clients send ``2.0``
  as ``2``, so ``2.0`` is a ``long`` too; an integer beyond 64 bits → ``string``, its
  digits); any other number → ``double``; an array → ``string`` holding the array as JSON
  text; an object is flattened into one column per key (``objects``); null makes no value
  (and no column: as in Segment, a column appears with its first non-null value). Strings
  stay strings even when they look like times or numbers (``"2024-05-01"`` is not made a
  timestamp: that is a contract's job).
- A new column takes the type its table's contract gives the property (``hints``: ``int``
  for an ``integer`` bounded to 32 bits, ``long``, ``double``, ``string``, ``boolean``), else
  the type of its first value in raw order. Only a hint makes an ``int`` column: values
  never have that kind.
- Nothing is ever dropped or quarantined for its type. A value goes into its column when
  the column's type holds it exactly: any value into a ``string`` column (as its JSON text,
  ``12`` → ``"12"``, ``true`` → ``"true"``); a ``long`` within ±2^53 into a ``double`` column.
  Every other value goes into the column's twin of the value's own type,
  ``<column>__<type>`` (``price__double`` next to a ``long`` ``price``; ``plan__string``
  next to a ``boolean`` ``plan``), created when first needed. A ``long`` within 32 bits
  goes into an ``int`` column (a bigger one promotes the column, below).
- A column changes type only by Iceberg's int → long promotion (``promotion``): an ``int``
  column becomes ``long`` in place when a value needs 64 bits or its contract now says
  ``long`` (a REVISION raised the ``maximum``). Old files stay readable by every engine
  (they read as ``long``). Any other change (long → double …) is a twin column instead.

Every decision depends on the value alone (and, for a new column, on the contract or the
first value; for a promotion, on whether any value needed 64 bits), never on how rows were
cut into batches: a replay in other batches makes the same tables.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.types import BooleanType, DoubleType, IcebergType, IntegerType, LongType, StringType


class Kind(enum.StrEnum):
    """The column types made from JSON values."""

    STRING = "string"
    #: 32 bits: only made from a contract's hint (``hints``).
    INT = "int"
    LONG = "long"
    DOUBLE = "double"
    BOOLEAN = "boolean"


ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.INT: pa.int32(),
    Kind.LONG: pa.int64(),
    Kind.DOUBLE: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
}

ICEBERG_TYPES: dict[Kind, IcebergType] = {
    Kind.STRING: StringType(),
    Kind.INT: IntegerType(),
    Kind.LONG: LongType(),
    Kind.DOUBLE: DoubleType(),
    Kind.BOOLEAN: BooleanType(),
}

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
#: The in-place promotions Iceberg allows between our kinds.
PROMOTIONS: dict[Kind, Kind] = {Kind.INT: Kind.LONG}
_MIN_LONG = -(2**63)
_MAX_LONG = 2**63 - 1
#: Integers a double holds exactly.
EXACT_DOUBLE = 2**53


def kind_of_iceberg(iceberg_type: IcebergType) -> Kind | None:
    """The kind of an existing column, or None when it holds none of ours (a fixed column)."""
    for kind, candidate in ICEBERG_TYPES.items():
        if iceberg_type == candidate:
            return kind
    return None


def kind_of_arrow(arrow_type: pa.DataType) -> Kind | None:
    """The kind of a column Arrow's JSON reader inferred, or None if it needs a closer look."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return Kind.STRING
    if pa.types.is_int64(arrow_type):
        return Kind.LONG
    if pa.types.is_int32(arrow_type):
        return Kind.INT
    if pa.types.is_float64(arrow_type):
        return Kind.DOUBLE
    if pa.types.is_boolean(arrow_type):
        return Kind.BOOLEAN
    return None


def classify(value: Any) -> tuple[Kind, Any]:
    """A decoded JSON scalar or array → (kind, the value to store). Not for objects or null."""
    if isinstance(value, bool):
        return Kind.BOOLEAN, value
    if isinstance(value, int):
        if _MIN_LONG <= value <= _MAX_LONG:
            return Kind.LONG, value
        return Kind.STRING, str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < EXACT_DOUBLE:
            return Kind.LONG, int(value)
        return Kind.DOUBLE, value
    if isinstance(value, str):
        return Kind.STRING, value
    return Kind.STRING, msgspec.json.encode(value).decode()


def split_numbers(values: pa.Array) -> list[tuple[Kind, pa.Array]]:
    """A double column Arrow inferred → its whole numbers (``long``) and the rest (``double``)."""
    whole = pc.fill_null(pc.equal(pc.floor(values), values), False)
    count = pc.sum(whole).as_py() or 0
    if count == 0:
        return [(Kind.DOUBLE, values)]
    if count == len(values) - values.null_count:
        return [(Kind.LONG, values.cast(pa.int64()))]
    longs = pc.if_else(whole, pc.cast(values, pa.int64(), safe=False), pa.scalar(None, pa.int64()))
    return [(Kind.LONG, longs), (Kind.DOUBLE, pc.if_else(whole, pa.scalar(None, pa.float64()), values))]


def needs_exact_numbers(values: pa.Array) -> bool:
    """True when a double column Arrow inferred may have rounded big integers (> 2^53)."""
    if values.null_count == len(values):
        return False
    largest = pc.max(pc.abs(values)).as_py()
    return largest is not None and largest >= EXACT_DOUBLE


def fit(values: pa.Array, kind: Kind, column: Kind) -> tuple[pa.Array | None, pa.Array | None]:
    """Split ``values`` (of ``kind``) into what a ``column``-typed column holds exactly
    (typed for the column) and the rest (still of ``kind``, for the twin); None when empty."""
    if kind == column:
        return values, None
    if column == Kind.STRING:
        if kind == Kind.BOOLEAN:
            return pc.if_else(values, "true", "false"), None
        return values.cast(pa.string()), None
    if kind == Kind.INT and column in (Kind.LONG, Kind.DOUBLE):
        return values.cast(ARROW_TYPES[column]), None
    if column == Kind.DOUBLE and kind == Kind.LONG:
        return _split(values, pc.less_equal(pc.abs(values), EXACT_DOUBLE), pa.float64())
    if column == Kind.INT and kind == Kind.LONG:
        return _split(values, _within(values, INT_MIN, INT_MAX), pa.int32())
    if column in (Kind.LONG, Kind.INT) and kind == Kind.DOUBLE:
        if column == Kind.INT:
            within = _within(values, INT_MIN, INT_MAX)
        else:  # float(_MAX_LONG) is 2^63, one past the largest long
            within = pc.and_(pc.greater_equal(values, float(_MIN_LONG)), pc.less(values, float(_MAX_LONG)))
        whole = pc.and_(pc.equal(pc.floor(values), values), within)
        return _split(values, whole, ARROW_TYPES[column])
    return None, values


def promotion(values: pa.Array, kind: Kind, column: Kind) -> Kind | None:
    """The kind ``column`` must be promoted to (in place) to hold ``values`` (of ``kind``)
    exactly, when Iceberg allows it: ``long`` values beyond 32 bits for an ``int`` column.
    None when no promotion is needed or none would help (those values go to a twin)."""
    if column != Kind.INT or kind != Kind.LONG or not len(values) or values.null_count == len(values):
        return None
    low, high = pc.min_max(values).values()
    return PROMOTIONS[column] if low.as_py() < INT_MIN or high.as_py() > INT_MAX else None


def _within(values: pa.Array, low: int, high: int) -> pa.Array:
    return pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high))


def _split(values: pa.Array, fits: pa.Array, target: pa.DataType) -> tuple[pa.Array | None, pa.Array | None]:
    fits = pc.fill_null(fits, False)
    count = pc.sum(fits).as_py() or 0
    valid = len(values) - values.null_count
    if count == valid:
        return values.cast(target), None
    if count == 0:
        return None, values
    null = pa.scalar(None, target)
    kept = pc.if_else(fits, pc.cast(values, target, safe=False), null)
    rest = pc.if_else(fits, pa.scalar(None, values.type), values)
    return kept, rest
