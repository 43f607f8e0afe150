from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import orjson

from insightloop.contracts.infer import infer_contracts, read_samples, samples_of
from insightloop.contracts.registry import compile_schema
from insightloop.demo.traffic import Traffic

SAMPLES: list[dict[str, Any]] = [
    {
        "type": "track",
        "event": "Export Downloaded",
        "properties": {
            "format": "csv",
            "rows": 10,
            "size_mb": 1,
            "at": "2026-11-26T10:00:00.000Z",
            "owner": "ada@example.com",
            "tags": ["a"],
            "filter": {"region": "emea"},
        },
    },
    {
        "type": "track",
        "event": "Export Downloaded",
        "properties": {
            "format": "xlsx",
            "rows": 20,
            "size_mb": 2.5,
            "at": "2026-11-26T11:00:00Z",
            "note": None,
        },
    },
    {
        "type": "track",
        "event": "Export Downloaded",
        "properties": {"format": "csv", "rows": 30, "size_mb": 3, "at": "2026-11-26T12:00:00Z", "note": "hi"},
    },
    {"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com", "plan": "team"}},
    {"type": "identify", "userId": "u2", "traits": {"email": "ben@example.com"}},
    {"type": "alias", "userId": "u2", "previousId": "x"},
]


def test_inferred_contracts_validate_their_samples_and_mark_optional_properties() -> None:
    proposals = infer_contracts(samples_of(SAMPLES))
    assert set(proposals) == {("track", "export_downloaded"), ("identify", "traits")}
    export = proposals[("track", "export_downloaded")]
    assert export["required"] == ["at", "format", "rows", "size_mb"]
    assert export["self"]["name"] == "export_downloaded" and export["self"]["version"] == "1-0-0"
    props = export["properties"]
    assert props["rows"]["type"] == "integer"
    assert props["size_mb"]["type"] == "number"
    assert props["at"]["format"] == "date-time"
    assert props["owner"]["format"] == "email"
    assert props["note"]["type"] == ["null", "string"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["filter"]["properties"]["region"]["type"] == "string"
    assert "enum" not in props["format"]
    validator = compile_schema(export)
    for sample in SAMPLES[:3]:
        assert validator.is_valid(sample["properties"])
    assert not validator.is_valid({**SAMPLES[0]["properties"], "rows": "many"})
    traits = proposals[("identify", "traits")]
    assert traits["required"] == ["email"]
    assert compile_schema(traits).is_valid({"email": "ben@example.com"})


def test_enums_for_low_cardinality_strings_when_asked_and_seen_often_enough() -> None:
    proposals = infer_contracts(samples_of(SAMPLES * 4), enum_max=3)
    assert proposals[("track", "export_downloaded")]["properties"]["format"]["enum"] == ["csv", "xlsx"]
    few = infer_contracts(samples_of(SAMPLES), enum_max=3)
    assert "enum" not in few[("track", "export_downloaded")]["properties"]["format"]


def test_read_jsonl_with_batches_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    lines = [orjson.dumps(SAMPLES[0]), b"not json", orjson.dumps({"batch": SAMPLES[1:3]}), b""]
    path.write_bytes(b"\n".join(lines))
    samples = read_samples(path)
    assert samples.skipped == 1
    assert len(samples.objects[("track", "export_downloaded")]) == 3


def test_contracts_inferred_from_demo_traffic_validate_every_sample(tmp_path: Path) -> None:
    traffic = Traffic("web", "mobile", seed=11)
    now = dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)
    path = tmp_path / "demo.jsonl"
    path.write_bytes(b"\n".join(gzip.decompress(traffic.next_batch(now).body) for _ in range(150)))
    samples = read_samples(path)
    proposals = infer_contracts(samples, enum_max=6)
    assert ("track", "dashboard_viewed") in proposals and ("group", "traits") in proposals
    assert proposals[("group", "traits")]["properties"]["createdAt"]["format"] == "date-time"
    for key, schema in proposals.items():
        validator = compile_schema(schema)
        assert all(validator.is_valid(obj) for obj in samples.objects[key]), key
