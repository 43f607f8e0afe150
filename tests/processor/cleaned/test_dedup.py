"""A message id makes one row: its first copy in raw order wins, within the window."""

from __future__ import annotations

from pathlib import Path

from cleaned_support import NO_CONTRACTS, lake, raw_rows, rows, track
from pyiceberg.catalog import Catalog

from insightloop.config import load_config
from insightloop.lake.catalog import open_catalog
from insightloop.processor.cleaned.stage import CleanedStage


def _ids(catalog: Catalog, identifier: str = "cleaned.tracks") -> list[tuple[str, str]]:
    return [(row["id"], row["event_text"]) for row in rows(catalog, identifier)]


def test_duplicates_within_a_batch_keep_the_first_copy(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    events = [track("m1", "First"), track("m2", "Other"), track("m1", "Second"), track("m1", "Third")]
    stage.apply(*raw_rows(events, seq=1))

    assert _ids(catalog) == [("m1", "First"), ("m2", "Other")]
    assert rows(catalog, "cleaned.second") == []
    assert stage.stats.duplicates == 2


def test_duplicates_across_batches_and_a_retry_days_later(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([track("m1", "Clicked")], seq=1, received_at="2024-05-01T12:00:00Z"))
    stage.apply(*raw_rows([track("m1", "Clicked"), track("m2", "Clicked")], seq=2))
    stage.apply(*raw_rows([track("m1", "Clicked")], seq=3, received_at="2024-05-20T08:00:00Z"))

    assert _ids(catalog) == [("m1", "Clicked"), ("m2", "Clicked")]
    assert len(rows(catalog, "cleaned.clicked")) == 2


def test_the_same_id_from_another_source_is_another_event(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([track("m1", "Clicked")], seq=1, source="web"))
    stage.apply(*raw_rows([track("m1", "Clicked")], seq=2, source="backend"))

    assert sorted(row["source"] for row in rows(catalog, "cleaned.tracks")) == ["backend", "web"]


def test_dedup_survives_a_restart(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    CleanedStage(catalog, config).apply(*raw_rows([track("m1", "Clicked")], seq=1))

    config = load_config(environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path), **NO_CONTRACTS})
    restarted = CleanedStage(open_catalog(config), config)
    assert restarted.watermark() == 1
    restarted.apply(*raw_rows([track("m1", "Clicked"), track("m2", "Clicked")], seq=2))

    assert _ids(catalog) == [("m1", "Clicked"), ("m2", "Clicked")]


def test_ids_older_than_the_window_are_forgotten(tmp_path: Path) -> None:
    config = load_config(
        environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path), "INSIGHTLOOP__PROCESSOR__DEDUP_WINDOW_DAYS": "3"}
    )
    catalog = open_catalog(config)
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([track("old", "Clicked")], seq=1, received_at="2024-05-01T12:00:00Z"))
    stage.apply(*raw_rows([track("new", "Clicked")], seq=2, received_at="2024-05-10T12:00:00Z"))
    # A retry of "new" is still a duplicate; "old" is 9 days past its first copy: a new event.
    stage.apply(
        *raw_rows(
            [track("old", "Clicked"), track("new", "Clicked")], seq=3, received_at="2024-05-10T13:00:00Z"
        )
    )

    assert [row["id"] for row in rows(catalog, "cleaned.tracks")] == ["new", "old", "old"]
    restarted = CleanedStage(catalog, config)  # the window holds after a restart as well
    restarted.apply(*raw_rows([track("new", "Clicked")], seq=4, received_at="2024-05-11T13:00:00Z"))
    assert len(rows(catalog, "cleaned.tracks")) == 3


def test_a_rejected_copy_does_not_hide_a_corrected_retry(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    bad = b'{"type":"track","messageId":"m1","userId":"u1","event":"Paid","properties":[1,2]}'
    stage.apply(*raw_rows([bad], seq=1))
    stage.apply(*raw_rows([track("m1", "Paid", {"amount": 5})], seq=2))

    quarantined = rows(catalog, "quarantine.sdk_events", "event_id")
    assert [(r["event_id"], r["field"]) for r in quarantined] == [("m1", "properties")]
    assert [(row["id"], row["amount"]) for row in rows(catalog, "cleaned.paid")] == [("m1", 5)]


def test_a_torn_seen_ids_file_is_cut_back_at_restart(tmp_path: Path) -> None:
    config, catalog = lake(tmp_path)
    stage = CleanedStage(catalog, config)
    stage.apply(*raw_rows([track("m1", "Clicked")], seq=1))
    (seen_file,) = config.path("processor", "cleaned").glob("seen-*.ids")
    with open(seen_file, "ab") as file:
        file.write(b"SEEN\x02\x00\x00")  # a crash in the middle of the next record

    restarted = CleanedStage(catalog, config)
    assert restarted.watermark() == 1
    restarted.apply(*raw_rows([track("m1", "Clicked"), track("m2", "Clicked")], seq=2))
    again = CleanedStage(catalog, config)
    again.apply(*raw_rows([track("m2", "Clicked")], seq=3))

    assert _ids(catalog) == [("m1", "Clicked"), ("m2", "Clicked")]
