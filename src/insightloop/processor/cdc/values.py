"""Envelope values (JSON, as ``cdc.changes`` describes) → Python values of a lake column's
Iceberg type, ready for Arrow. ``convert`` raises ``ValueError`` for a value the column
cannot hold (the caller quarantines it); it never guesses (no float → int truncation, no
rounding of decimals beyond their scale)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
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

_INT_RANGE = {IntegerType: 2**31, LongType: 2**63}


def convert(value: Any, iceberg: IcebergType, *, as_json: bool = False) -> Any:
    """``value`` as the column of type ``iceberg`` stores it (None stays None). ``as_json``:
    the source column is JSON (``pgtypes.is_json``), so a string column gets the value's JSON
    text whatever it is (a JSON document that is a bare string is ``"plain"``, not ``plain``)."""
    if value is None:
        return None
    if as_json and isinstance(iceberg, StringType):
        return orjson.dumps(value).decode()
    return _converter(iceberg)(value)


def _converter(iceberg: IcebergType) -> Callable[[Any], Any]:
    if isinstance(iceberg, StringType):
        return _string
    if isinstance(iceberg, IntegerType | LongType):
        limit = _INT_RANGE[type(iceberg)]
        return lambda v: _integer(v, limit)
    if isinstance(iceberg, FloatType | DoubleType):
        return _float
    if isinstance(iceberg, DecimalType):
        return lambda v: _decimal(v, iceberg.precision, iceberg.scale)
    if isinstance(iceberg, BooleanType):
        return _boolean
    if isinstance(iceberg, DateType):
        return lambda v: date.fromisoformat(_text(v))
    if isinstance(iceberg, TimestamptzType):
        return _timestamptz
    if isinstance(iceberg, TimestampType):
        return lambda v: datetime.fromisoformat(_text(v)).replace(tzinfo=None)
    if isinstance(iceberg, BinaryType):
        return _binary
    raise ValueError(f"no conversion to {iceberg}")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__} {value!r:.80}")
    return value


def _string(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _integer(value: Any, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {type(value).__name__} {value!r:.80}")
    if not -limit <= value < limit:
        raise ValueError(f"{value} is out of range for the column")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value)
    raise ValueError(f"expected a number, got {type(value).__name__} {value!r:.80}")


def _decimal(value: Any, precision: int, scale: int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a decimal string, got {type(value).__name__} {value!r:.80}")
    try:
        number = Decimal(value)
        quantized = number.quantize(Decimal(1).scaleb(-scale))
    except InvalidOperation as exc:
        raise ValueError(f"{value!r:.80} is not a decimal({precision},{scale})") from exc
    if quantized != number or len(quantized.as_tuple().digits) > precision:
        raise ValueError(f"{value!r:.80} does not fit decimal({precision},{scale})")
    return quantized


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {type(value).__name__} {value!r:.80}")
    return value


def _timestamptz(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_text(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _binary(value: Any) -> bytes:
    try:
        return base64.b64decode(_text(value), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from exc
