"""The repository's own contracts: they load, and the demo's traffic meets them."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import orjson

from insightloop.contracts.compat import compare
from insightloop.contracts.registry import Registry
from insightloop.contracts.schemaver import Level
from insightloop.contracts.validate import OK, validate
from insightloop.demo.traffic import Traffic

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def test_the_repository_contracts_load_with_their_versions() -> None:
    registry = Registry.load(CONTRACTS)
    assert [str(c.version) for c in registry.versions("track", "report_created")] == ["1-0-0", "1-0-1"]
    assert [str(c.version) for c in registry.versions("track", "invite_sent")] == ["1-0-0", "2-0-0"]
    old, new = registry.versions("track", "report_created")
    assert compare(old.schema, new.schema).level is Level.ADDITION
    old, new = registry.versions("track", "invite_sent")
    assert compare(old.schema, new.schema).level is Level.MODEL


def test_the_demo_traffic_meets_the_contracts() -> None:
    registry = Registry.load(CONTRACTS)
    traffic = Traffic("web", "mobile", seed=3)
    now = dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)
    checked: dict[str, int] = {}
    for _ in range(300):
        body = orjson.loads(gzip.decompress(traffic.next_batch(now).body))
        for message in body["batch"]:
            kind = message["type"]
            if kind not in ("track", "identify", "group"):
                continue
            contract = registry.for_message(kind, message.get("event"), message.get("context"))
            assert contract is not None, message.get("event")
            data = message.get("properties" if kind == "track" else "traits", {})
            assert validate(contract, data) == OK, (contract.key, data)
            checked[contract.key] = checked.get(contract.key, 0) + 1
    assert {"track/dashboard_viewed/1-0-0", "identify/traits/1-0-0", "group/traits/1-0-0"} <= checked.keys()
    assert "track/report_created/1-0-1" in checked
