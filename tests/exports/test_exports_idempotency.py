"""The same file twice is a no-op; a corrected export of a period replaces what the earlier
one gave the cleaned table, in one commit; the latest version of a key wins."""

from __future__ import annotations

from pathlib import Path

from exports_kit import Lake, counts, csv_text, landing_file, make_config, row

from insightloop.exports.manifest import Manifest
from insightloop.exports.status import state_directory


def test_the_same_file_twice_is_a_no_op(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(row(i) for i in range(1, 6)))
    first = lake.load(path)
    assert (first.status, first.rows, first.bad_rows) == ("loaded", 5, 0)
    assert lake.counts() == counts(5, 0, 5, 0)

    again = lake.load(path)
    copy = landing_file(tmp_path, "renamed_copy.csv", path.read_bytes())
    renamed = lake.load(copy)
    assert again.status == renamed.status == "unchanged"
    assert lake.counts() == counts(5, 0, 5, 0)
    raw = lake.catalog.load_table("raw.export_rows")
    assert len(raw.metadata.snapshots) == 1


def test_a_lost_manifest_is_rebuilt_from_raw(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(row(i) for i in range(1, 4)))
    Lake(config).load(path)
    (state_directory(config) / "manifest.json").unlink()
    lake = Lake(config)
    assert lake.load(path).status == "unchanged"
    assert [r.rows for r in Manifest(state_directory(config)).records()] == [3]
    assert lake.counts() == counts(3, 0, 3, 0)


def test_duplicate_keys_latest_version_wins(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    day1 = [row(1, "2026-11-24", score=1), row(2, "2026-11-24", score=1)]
    # In one file: key 3 twice, the later updated_at first; key 2 again with an older time.
    day2 = [row(3, hour=12, score=2), row(3, hour=9, score=1), row(2, "2026-11-23", score=9), row(1, score=2)]
    lake.load(landing_file(tmp_path, "contacts_2026-11-24.csv", csv_text(day1)))
    lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(day2)))
    assert lake.counts() == counts(6, 0, 3, 0)
    scores = {key: r["score"] for key, r in lake.cleaned().items()}
    assert scores == {"1": 2, "2": 1, "3": 2}


def test_a_corrected_file_replaces_its_period(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    day1 = [row(i, "2026-11-24", score=10 + i) for i in range(1, 6)]  # keys 1-5
    day2 = [row(i, "2026-11-25", score=20 + i) for i in range(3, 8)]  # keys 3-7
    lake.load(landing_file(tmp_path, "contacts_2026-11-24.csv", csv_text(day1)))
    lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(day2)))
    assert lake.counts() == counts(10, 0, 7, 0)
    cleaned = lake.catalog.load_table("cleaned.crm_contacts")
    before = len(cleaned.metadata.snapshots)

    # The corrected day 2 lacks keys 3 and 7 and changes 4-6.
    corrected = [row(i, "2026-11-25", score=30 + i) for i in range(4, 7)]
    path = landing_file(tmp_path, "contacts_2026-11-25_v2.csv", csv_text(corrected))
    outcome = lake.load(path)
    assert outcome.record is not None and outcome.record.replaces is not None
    assert lake.counts() == counts(13, 0, 6, 0)
    scores = {key: (r["score"], r["_period"]) for key, r in lake.cleaned().items()}
    assert scores == {
        "1": (11, "2026-11-24"),
        "2": (12, "2026-11-24"),
        "3": (13, "2026-11-24"),  # day 1's version again: the replaced file had beaten it
        "4": (34, "2026-11-25"),
        "5": (35, "2026-11-25"),
        "6": (36, "2026-11-25"),
    }
    cleaned.refresh()
    assert len(cleaned.metadata.snapshots) == before + 1  # one atomic commit


def test_a_correction_takes_the_place_of_its_earlier_versions_bad_rows(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    day2 = [row(1), row(2, score="two"), row(3, signup="not a date"), row(4)]
    first = lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(day2)))
    assert (first.rows, first.bad_rows) == (2, 2)
    assert lake.counts() == counts(2, 2, 2, 2)

    # The vendor fixes key 2, still sends key 3 wrong: one bad row, the corrected file's.
    fixed = [row(1), row(2), row(3, signup="not a date"), row(4)]
    second = lake.load(landing_file(tmp_path, "contacts_2026-11-25_v2.csv", csv_text(fixed)))
    assert second.record is not None and second.record.replaces == first.record.sha256  # type: ignore[union-attr]
    assert lake.counts() == counts(5, 3, 3, 1)
    (held,) = lake.rows("quarantine.export_rows")
    assert (held["sha256"], held["column_name"], held["line"]) == (second.record.sha256, "signup", 4)

    # A clean correction empties it.
    clean = [row(1), row(2), row(3), row(4)]
    third = lake.load(landing_file(tmp_path, "contacts_2026-11-25_v3.csv", csv_text(clean)))
    assert third.record is not None and third.record.replaces == second.record.sha256
    assert lake.counts() == counts(9, 3, 4, 0)
