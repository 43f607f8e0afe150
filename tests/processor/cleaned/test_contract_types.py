"""A table's contract chooses its columns' types, and a REVISION widens a column in place:
``number`` makes a double column whatever the first values, a 32-bit ``integer`` an int
column that becomes long (Iceberg's promotion, same field id, old rows unchanged) when the
contract or a value asks; a new MODEL gets its own table; an ADDITION a new column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from cleaned_support import identify, raw_rows, rows, track
from pyiceberg.catalog import Catalog
from pyiceberg.types import BooleanType, DoubleType, IcebergType, IntegerType, LongType, StringType

from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cleaned.stage import CleanedStage
from insightloop.processor.compaction import Compactor

BIG = 2**35
TABLE = "cleaned.order_placed"


def write_contract(root: Path, kind: str, name: str, version: str, properties: dict[str, Any]) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "self": {"vendor": "insightloop", "name": name, "format": "jsonschema", "version": version},
        "type": "object",
        "properties": properties,
    }
    folder = root / kind / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{version}.json").write_bytes(orjson.dumps(schema))


def lake(tmp_path: Path, mode: str = "enforce") -> tuple[Config, Catalog, Path]:
    folder = tmp_path / "contracts"
    folder.mkdir(exist_ok=True)
    environ = {
        "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
        "INSIGHTLOOP__CONTRACTS__DIR": str(folder),
        "INSIGHTLOOP__CONTRACTS__MODE": mode,
    }
    config = load_config(environ=environ)
    return config, open_catalog(config), folder


def order(message_id: str, **properties: Any) -> dict[str, Any]:
    return track(message_id, "Order Placed", properties)


def column_types(catalog: Catalog, identifier: str) -> dict[str, IcebergType]:
    return {f.name: f.field_type for f in catalog.load_table(identifier).schema().fields}


def field_id(catalog: Catalog, identifier: str, name: str) -> int:
    return catalog.load_table(identifier).schema().find_field(name).field_id


def values(catalog: Catalog, identifier: str, column: str) -> dict[str, Any]:
    return {row["id"]: row.get(column) for row in rows(catalog, identifier)}


def quarantined(catalog: Catalog) -> list[dict[str, Any]]:
    return rows(catalog, "quarantine.sdk_events", "origin")


COUNT_32 = {"type": "integer", "minimum": 0, "maximum": 1000}


def test_a_number_makes_a_double_column_even_when_its_first_values_are_whole(tmp_path: Path) -> None:
    config, catalog, folder = lake(tmp_path)
    write_contract(folder, "track", "order_placed", "1-0-0", {"total": {"type": ["number", "null"]}})
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([order("a", total=10), order("b", total=12)], seq=1))
    stage.apply(*raw_rows([order("c", total=2.5)], seq=2))

    types = column_types(catalog, TABLE)
    assert types["total"] == DoubleType()
    assert "total__double" not in types
    assert values(catalog, TABLE, "total") == {"a": 10.0, "b": 12.0, "c": 2.5}


def test_a_32_bit_integer_makes_an_int_column_and_other_types_follow_the_contract(tmp_path: Path) -> None:
    config, catalog, folder = lake(tmp_path)
    properties = {
        "quantity": COUNT_32,
        "sku": {"type": "string"},
        "gift": {"type": "boolean"},
        "shipping": {"type": "object", "properties": {"days": {"type": "integer", "maximum": 30}}},
        "tags": {"type": "array"},
        "level": {"type": ["integer", "null"], "exclusiveMinimum": -1, "exclusiveMaximum": 6},
        "score": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
    }
    write_contract(folder, "track", "order_placed", "1-0-0", properties)
    event = order("a", quantity=3, sku="X1", gift=True, shipping={"days": 2}, tags=["new"], level=5, score=7)
    CleanedStage(catalog, config).apply(*raw_rows([event], seq=1))

    types = column_types(catalog, TABLE)
    assert types["quantity"] == IntegerType()
    assert types["shipping_days"] == LongType()  # no minimum: not known to fit 32 bits
    assert (types["sku"], types["gift"], types["tags"]) == (StringType(), BooleanType(), StringType())
    assert types["level"] == IntegerType()
    assert types["score"] == LongType()  # no single type in the contract: the value decides
    assert rows(catalog, TABLE)[0]["quantity"] == 3


def test_a_revision_raising_the_maximum_promotes_the_int_column_to_long_in_place(tmp_path: Path) -> None:
    config, catalog, folder = lake(tmp_path)
    write_contract(folder, "track", "order_placed", "1-0-0", {"quantity": COUNT_32})
    CleanedStage(catalog, config).apply(*raw_rows([order("a", quantity=5), order("b", quantity=7)], seq=1))
    assert column_types(catalog, TABLE)["quantity"] == IntegerType()
    before = field_id(catalog, TABLE, "quantity")

    # A REVISION past 32 bits, picked up by a restarted stage.
    write_contract(folder, "track", "order_placed", "1-1-0", {"quantity": {**COUNT_32, "maximum": 2**40}})
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([order("c", quantity=9)], seq=2))  # the contract alone promotes
    assert column_types(catalog, TABLE)["quantity"] == LongType()
    stage.apply(*raw_rows([order("d", quantity=BIG)], seq=3))

    types = column_types(catalog, TABLE)
    assert types["quantity"] == LongType()
    assert not any(name.startswith("quantity__") for name in types)
    assert field_id(catalog, TABLE, "quantity") == before
    assert values(catalog, TABLE, "quantity") == {"a": 5, "b": 7, "c": 9, "d": BIG}
    assert quarantined(catalog) == []


def test_a_value_beyond_32_bits_promotes_the_column_under_warn(tmp_path: Path) -> None:
    config, catalog, folder = lake(tmp_path, mode="warn")
    write_contract(folder, "track", "order_placed", "1-0-0", {"quantity": COUNT_32})
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([order("a", quantity=5)], seq=1))
    assert column_types(catalog, TABLE)["quantity"] == IntegerType()
    stage.apply(*raw_rows([order("b", quantity=-BIG), order("c", quantity=6)], seq=2))

    types = column_types(catalog, TABLE)
    assert types["quantity"] == LongType()
    assert not any(name.startswith("quantity__") for name in types)
    assert values(catalog, TABLE, "quantity") == {"a": 5, "b": -BIG, "c": 6}
    assert values(catalog, TABLE, "_contract_warning")["b"].startswith("track/order_placed/1-0-0")
    assert stage.stats.contract_warnings == 1


def test_a_promoted_table_compacts_and_reads_every_row(tmp_path: Path) -> None:
    config, catalog, folder = lake(tmp_path, mode="warn")
    write_contract(folder, "track", "order_placed", "1-0-0", {"quantity": COUNT_32})
    stage = CleanedStage(catalog, config)
    for seq in (1, 2):
        stage.apply(*raw_rows([order(f"small{seq}", quantity=seq)], seq=seq))
    assert column_types(catalog, TABLE)["quantity"] == IntegerType()
    stage.apply(*raw_rows([order("big", quantity=BIG)], seq=3))

    assert Compactor(catalog, min_files=2, namespaces=("cleaned",)).compact_all()
    assert values(catalog, TABLE, "quantity") == {"small1": 1, "small2": 2, "big": BIG}


def test_integer_to_number_in_a_new_model_lands_in_its_own_table_with_a_double_column(
    tmp_path: Path,
) -> None:
    config, catalog, folder = lake(tmp_path)
    write_contract(folder, "track", "order_placed", "1-0-0", {"total": {"type": "integer"}})
    CleanedStage(catalog, config).apply(*raw_rows([order("a", total=10)], seq=1))

    write_contract(folder, "track", "order_placed", "2-0-0", {"total": {"type": "number"}})
    old_shape = order("pinned", total=11)
    old_shape["context"] = {"schema_version": "1"}
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([order("b", total=12), order("c", total=2.5), old_shape], seq=2))

    assert column_types(catalog, TABLE)["total"] == LongType()
    assert values(catalog, TABLE, "total") == {"a": 10, "pinned": 11}
    v2 = column_types(catalog, f"{TABLE}_v2")
    assert v2["total"] == DoubleType()
    assert not any(name.startswith("total__") for name in v2)
    assert values(catalog, f"{TABLE}_v2", "total") == {"b": 12.0, "c": 2.5}


def test_an_addition_mid_stream_adds_the_column_in_place_and_loses_no_event(tmp_path: Path) -> None:
    config, catalog, folder = lake(tmp_path)
    base = {"sku": {"type": "string"}}
    write_contract(folder, "track", "order_placed", "1-0-0", base)
    first = [order(f"e{i}", sku=f"s{i}") for i in range(3)]
    CleanedStage(catalog, config).apply(*raw_rows(first, seq=1))
    before = field_id(catalog, TABLE, "sku")

    write_contract(folder, "track", "order_placed", "1-0-1", {**base, "coupon_value": {"type": "number"}})
    later = [order(f"f{i}", sku=f"t{i}", coupon_value=5) for i in range(3)]
    later.append(order("g", sku="u"))  # still valid without it
    CleanedStage(catalog, config).apply(*raw_rows(later, seq=2))

    assert len(rows(catalog, TABLE)) == len(first) + len(later)
    assert quarantined(catalog) == []
    assert column_types(catalog, TABLE)["coupon_value"] == DoubleType()
    assert field_id(catalog, TABLE, "sku") == before
    coupons = values(catalog, TABLE, "coupon_value")
    assert [coupons[f"e{i}"] for i in range(3)] == [None, None, None]
    assert [coupons[f"f{i}"] for i in range(3)] == [5.0, 5.0, 5.0]
    assert coupons["g"] is None


def test_the_traits_contract_types_identifies_and_users_columns(tmp_path: Path) -> None:
    config, catalog, folder = lake(tmp_path, mode="warn")
    write_contract(folder, "identify", "traits", "1-0-0", {"seats": COUNT_32, "mrr": {"type": "number"}})
    stage = CleanedStage(catalog, config)
    at = "2024-05-01T11:00:00Z"
    stage.apply(*raw_rows([identify("i1", "u1", {"seats": 3, "mrr": 100}, at)], seq=1))
    for table in ("cleaned.identifies", "cleaned.users"):
        types = column_types(catalog, table)
        assert (types["seats"], types["mrr"]) == (IntegerType(), DoubleType())

    later = "2024-05-01T11:30:00Z"
    stage.apply(*raw_rows([identify("i2", "u2", {"seats": BIG}, later)], seq=2))
    for table in ("cleaned.identifies", "cleaned.users"):
        assert column_types(catalog, table)["seats"] == LongType()
    assert {row["id"]: row["seats"] for row in rows(catalog, "cleaned.users")} == {"u1": 3, "u2": BIG}
