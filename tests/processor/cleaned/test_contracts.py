"""Stage 2 checks events against their contracts: enforce quarantines, warn loads, no contract
allowed or quarantined, and every decision the same on a replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from cleaned_support import contents, identify, raw_rows, rows, track
from pyiceberg.catalog import Catalog

from insightloop.config import Config, load_config
from insightloop.errors import ConfigError
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cleaned.stage import CleanedStage

REPORT = {
    "type": "object",
    "properties": {"report_id": {"type": "string"}, "rows": {"type": "integer", "minimum": 0}},
    "required": ["report_id"],
    "additionalProperties": False,
}
TRAITS = {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}


def write_contract(root: Path, kind: str, name: str, version: str, body: dict[str, Any]) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "self": {"vendor": "insightloop", "name": name, "format": "jsonschema", "version": version},
        **body,
    }
    folder = root / kind / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{version}.json").write_bytes(orjson.dumps(schema))


def lake(tmp_path: Path, **settings: str) -> tuple[Config, Catalog]:
    folder = tmp_path / "contracts"
    if not folder.exists():
        write_contract(folder, "track", "report_created", "1-0-0", REPORT)
        write_contract(folder, "identify", "traits", "1-0-0", TRAITS)
    environ = {"INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"), "INSIGHTLOOP__CONTRACTS__DIR": str(folder)}
    environ.update({f"INSIGHTLOOP__CONTRACTS__{key.upper()}": value for key, value in settings.items()})
    config = load_config(environ=environ)
    return config, open_catalog(config)


def report(message_id: str, **properties: Any) -> dict[str, Any]:
    return track(message_id, "Report Created", properties)


def quarantined(catalog: Catalog) -> dict[str, dict[str, Any]]:
    return {row["event_id"]: row for row in rows(catalog, "quarantine.sdk_events", "origin")}


def test_invalid_events_are_quarantined_with_every_violation_and_valid_neighbours_load(
    tmp_path: Path,
) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    events = [
        report("ok1", report_id="r1", rows=3),
        report("bad", rows=-1, colour="red"),
        report("ok2", report_id="r2"),
        identify("i-bad", "u1", {"name": "Ann"}, "2024-05-01T11:00:00Z"),
        identify("i-ok", "u2", {"email": "b@example.com"}, "2024-05-01T11:00:00Z"),
        track("free", "Clicked", {"anything": 1}),  # no contract: allowed by default
    ]
    stage.apply(*raw_rows(events, seq=1))

    assert [row["id"] for row in rows(catalog, "cleaned.report_created")] == ["ok1", "ok2"]
    assert [row["id"] for row in rows(catalog, "cleaned.tracks")] == ["free", "ok1", "ok2"]
    assert [row["id"] for row in rows(catalog, "cleaned.identifies")] == ["i-ok"]
    out = quarantined(catalog)
    assert set(out) == {"bad", "i-bad"}
    bad = out["bad"]
    assert (bad["kind"], bad["field"], bad["contract"]) == (
        "contract_violation",
        "properties",
        "track/report_created/1-0-0",
    )
    violations = {(v["pointer"], v["keyword"]) for v in orjson.loads(bad["violations"])}
    assert violations == {
        ("/report_id", "required"),
        ("/rows", "minimum"),
        ("/colour", "additionalProperties"),
    }
    assert bad["payload"] == orjson.dumps(events[1])
    assert out["i-bad"]["contract"] == "identify/traits/1-0-0"
    assert [(v["pointer"], v["keyword"]) for v in orjson.loads(out["i-bad"]["violations"])] == [
        ("/email", "required")
    ]
    assert stage.stats.contract_quarantined == 2


def test_warn_loads_invalid_events_and_counts_them(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path, mode="warn")
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([report("bad", rows=-1), report("ok", report_id="r1")], seq=1))
    assert [row["id"] for row in rows(catalog, "cleaned.report_created")] == ["bad", "ok"]
    assert quarantined(catalog) == {}
    assert stage.stats.contract_warnings == 1


@pytest.mark.parametrize("policy", ["allow", "quarantine"])
def test_events_without_a_contract_follow_the_policy(tmp_path: Path, policy: str) -> None:
    config, catalog = lake(tmp_path, no_contract=policy)
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([track("free", "Clicked", {"x": 1}), report("ok", report_id="r1")], seq=1))
    tracks = [row["id"] for row in rows(catalog, "cleaned.tracks")]
    if policy == "allow":
        assert tracks == ["free", "ok"] and quarantined(catalog) == {}
        assert [row["x"] for row in rows(catalog, "cleaned.clicked")] == [1]
    else:
        assert tracks == ["ok"]
        row = quarantined(catalog)["free"]
        assert (row["kind"], row["contract"], row["reason"]) == (
            "no_contract",
            None,
            "no contract for track/clicked",
        )


def test_per_contract_override_beats_the_default(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    config = load_config(
        environ={
            "INSIGHTLOOP_DATA_DIR": config.data_dir,
            "INSIGHTLOOP__CONTRACTS__DIR": config.contracts.dir,
            "INSIGHTLOOP__CONTRACTS__CONTRACTS": '{"track/report_created" = {mode = "off"}}',
        }
    )
    CleanedStage(catalog, config).apply(*raw_rows([report("bad", rows=-1)], seq=1))
    assert [row["id"] for row in rows(catalog, "cleaned.report_created")] == ["bad"]


def test_a_replay_after_a_crash_gives_the_same_tables(tmp_path: Path) -> None:
    events = [report("ok1", report_id="r1"), report("bad", rows="x"), track("free", "Clicked")]
    config, catalog = lake(tmp_path / "once")
    CleanedStage(catalog, config).apply(*raw_rows(events, seq=1))
    expected = contents(catalog)

    config, catalog = lake(tmp_path / "twice")
    first = CleanedStage(catalog, config)
    first.apply(*raw_rows(events, seq=1))
    # A crash after the tables' commits and before the seen ids: a new process re-applies.
    (Path(config.data_dir) / "processor" / "cleaned").rename(Path(config.data_dir) / "lost")
    CleanedStage(catalog, config).apply(*raw_rows(events, seq=1))
    assert contents(catalog) == expected
    assert len(expected["quarantine.sdk_events"]) == 1


def test_a_corrected_retry_with_the_same_message_id_lands(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([report("m1", rows=-1)], seq=1))
    assert rows(catalog, "cleaned.report_created") == []
    stage.apply(*raw_rows([report("m1", report_id="r1", rows=1)], seq=2, received_at="2024-05-01T12:05:00Z"))
    assert [(row["id"], row["report_id"]) for row in rows(catalog, "cleaned.report_created")] == [
        ("m1", "r1")
    ]
    stage.apply(*raw_rows([report("m1", report_id="r1", rows=1)], seq=3, received_at="2024-05-01T12:06:00Z"))
    assert len(rows(catalog, "cleaned.report_created")) == 1  # a third copy is a duplicate
    assert set(quarantined(catalog)) == {"m1"}


def test_an_invalid_copy_does_not_hide_a_valid_copy_later_in_the_batch(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([report("m1", rows=-1), report("m1", report_id="r1")], seq=1))
    assert [(row["id"], row["report_id"]) for row in rows(catalog, "cleaned.report_created")] == [
        ("m1", "r1")
    ]
    assert [row["origin"] for row in rows(catalog, "quarantine.sdk_events", "origin")] == ["log:0:1:0"]
    assert stage.stats.duplicates == 0


def test_the_quarantine_table_gains_the_contract_columns_in_place(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path, mode="off")
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([b'{"type": "track", "event": '], seq=1))
    table = catalog.load_table("quarantine.sdk_events")
    with table.update_schema() as update:  # as a table made before contracts existed
        update.delete_column("contract")
        update.delete_column("violations")
    config, catalog = lake(tmp_path)
    CleanedStage(catalog, config).apply(*raw_rows([report("bad")], seq=2))
    out = sorted(rows(catalog, "quarantine.sdk_events", "origin"), key=lambda row: row["ingest_seq"])
    assert [(row["kind"], row["contract"]) for row in out] == [
        ("malformed_json", None),
        ("contract_violation", "track/report_created/1-0-0"),
    ]


def test_a_missing_contracts_folder_stops_the_stage_unless_contracts_are_off(tmp_path: Path) -> None:
    environ = {"INSIGHTLOOP_DATA_DIR": str(tmp_path), "INSIGHTLOOP__CONTRACTS__DIR": str(tmp_path / "nope")}
    config = load_config(environ=environ)
    with pytest.raises(ConfigError, match=r"contracts\.dir"):
        CleanedStage(open_catalog(config), config)
    config = load_config(environ={**environ, "INSIGHTLOOP__CONTRACTS__MODE": "off"})
    CleanedStage(open_catalog(config), config)


def test_bad_contracts_settings_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"contracts\.mode"):
        load_config(environ={"INSIGHTLOOP__CONTRACTS__MODE": "strict"})
    with pytest.raises(ConfigError, match=r"contracts\.no_contract"):
        load_config(environ={"INSIGHTLOOP__CONTRACTS__NO_CONTRACT": "drop"})
    with pytest.raises(ConfigError, match=r"contracts\.contracts"):
        load_config(environ={"INSIGHTLOOP__CONTRACTS__CONTRACTS": '{"report_created" = {mode = "warn"}}'})


REPORT_V2 = {
    "type": "object",
    "properties": {"report_id": {"type": "string"}, "rows": {"type": "integer"}, "owner": {"type": "string"}},
    "required": ["report_id", "owner"],
    "additionalProperties": False,
}


def test_a_new_model_lands_in_its_own_table_and_the_old_shape_keeps_its_table(tmp_path: Path) -> None:
    folder = tmp_path / "contracts"
    write_contract(folder, "track", "report_created", "1-0-0", REPORT)
    write_contract(folder, "track", "report_created", "2-0-0", REPORT_V2)
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    pinned_old = report("pinned", report_id="r3", owner="x")
    pinned_old["context"] = {"schema_version": "1"}
    stage.apply(
        *raw_rows(
            [
                report("v2", report_id="r1", owner="ann"),  # valid under 2-0-0: the new table
                report("v1", report_id="r2", rows=4),  # old producers' shape: 1-0-0, the old table
                pinned_old,  # pins MODEL 1 and breaks it (owner is not allowed there)
                report("neither", rows=-1),
            ],
            seq=1,
        )
    )
    assert [(row["id"], row["owner"]) for row in rows(catalog, "cleaned.report_created_v2")] == [
        ("v2", "ann")
    ]
    assert [row["id"] for row in rows(catalog, "cleaned.report_created")] == ["v1"]
    tracks = {row["id"]: row["event"] for row in rows(catalog, "cleaned.tracks")}
    assert tracks == {"v1": "report_created", "v2": "report_created_v2"}
    out = quarantined(catalog)
    assert (out["pinned"]["contract"], out["neither"]["contract"]) == (
        "track/report_created/1-0-0",
        "track/report_created/2-0-0",  # an unpinned event is reported against the latest
    )
    # The old table was not touched by the new MODEL: its columns are still 1-0-0's.
    assert "owner" not in catalog.load_table("cleaned.report_created").schema().column_names


def test_warn_flags_the_loaded_row_with_its_violation(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path, mode="warn")
    CleanedStage(catalog, config).apply(
        *raw_rows([report("ok", report_id="r1"), report("bad", rows=-1)], seq=1)
    )
    flagged = {row["id"]: row["_contract_warning"] for row in rows(catalog, "cleaned.report_created")}
    assert flagged["ok"] is None
    assert flagged["bad"].startswith("track/report_created/1-0-0: ")
    assert "report_id" in flagged["bad"]
