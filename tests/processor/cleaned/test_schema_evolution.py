"""New properties add columns in place; values of another type are kept in a twin column."""

from __future__ import annotations

from pathlib import Path

from cleaned_support import lake, raw_rows, rows, track
from pyiceberg.catalog import Catalog

from insightloop.processor.cleaned.stage import CleanedStage


def _types(catalog: Catalog, identifier: str) -> dict[str, str]:
    table = catalog.load_table(identifier)
    return {f.name: str(f.field_type) for f in table.schema().fields}


def test_a_new_property_adds_a_column_and_older_rows_read_null(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([track("t1", "Signed Up", {"plan": "free"})], seq=1))
    stage.apply(*raw_rows([track("t2", "Signed Up", {"plan": "pro", "referrer": "ad", "seats": 3})], seq=2))

    first, second = rows(catalog, "cleaned.signed_up")
    assert (first["plan"], first["referrer"], first["seats"]) == ("free", None, None)
    assert (second["plan"], second["referrer"], second["seats"]) == ("pro", "ad", 3)
    types = _types(catalog, "cleaned.signed_up")
    assert (types["referrer"], types["seats"]) == ("string", "long")


def test_values_of_another_type_are_kept_in_a_twin_column(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    stage.apply(
        *raw_rows([track("t1", "Paid", {"amount": 10, "ok": True, "note": "x", "ratio": 0.5})], seq=1)
    )
    later = [
        track("t2", "Paid", {"amount": 12.0, "ok": False, "note": 7, "ratio": 2}),  # all fit their columns
        track("t3", "Paid", {"amount": 12.5, "ok": "yes", "note": True, "ratio": "n/a"}),  # these do not
    ]
    stage.apply(*raw_rows(later, seq=2))

    by_id = {row["id"]: row for row in rows(catalog, "cleaned.paid")}
    assert by_id["t1"]["amount"] == 10
    assert by_id["t2"]["amount"] == 12  # an integral double fits a long column
    assert (by_id["t2"]["ok"], by_id["t2"]["note"], by_id["t2"]["ratio"]) == (False, "7", 2.0)
    assert by_id["t3"]["amount"] is None
    assert by_id["t3"]["amount__double"] == 12.5
    assert by_id["t3"]["ok"] is None
    assert by_id["t3"]["ok__string"] == "yes"
    assert by_id["t3"]["note"] == "true"  # anything fits a string column, as JSON text
    assert by_id["t3"]["ratio__string"] == "n/a"
    assert by_id["t1"]["amount__double"] is None
    types = _types(catalog, "cleaned.paid")
    assert (types["amount"], types["amount__double"], types["ok"], types["ok__string"]) == (
        "long",
        "double",
        "boolean",
        "string",
    )


def test_mixed_types_within_one_batch_keep_every_value(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    events = [
        track("t1", "Rated", {"score": 4, "big": 12345678901234567890123, "weight": 1.5}),
        track("t2", "Rated", {"score": "five", "big": 7, "weight": 9007199254740993}),
        track("t3", "Rated", {"score": 4.5}),
    ]
    stage.apply(*raw_rows(events, seq=1))

    by_id = {row["id"]: row for row in rows(catalog, "cleaned.rated")}
    assert by_id["t1"]["score"] == 4
    assert by_id["t2"]["score__string"] == "five"
    assert by_id["t3"]["score__double"] == 4.5
    assert by_id["t1"]["big"] == "12345678901234567890123"  # beyond 64 bits: its digits
    assert by_id["t2"]["big"] == "7"  # the column is text since its first value
    assert by_id["t1"]["weight"] == 1.5
    assert by_id["t2"]["weight__long"] == 9007199254740993  # exact: a double would round it


def test_keys_that_snake_case_alike_share_a_column(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    events = [
        track("t1", "Viewed", {"productId": "a"}),
        track("t2", "Viewed", {"product_id": "b"}),
        track("t3", "Viewed", {"productId": "c", "product_id": "d"}),
    ]
    stage.apply(*raw_rows(events, seq=1))

    by_id = {row["id"]: row for row in rows(catalog, "cleaned.viewed")}
    assert [by_id[i]["product_id"] for i in ("t1", "t2", "t3")] == ["a", "b", "c"]
    assert by_id["t3"]["product_id__string"] == "d"  # the second value of one event is kept too
