"""One day's export in several parts (``contacts_2026-11-25_part-001.csv``, ``…_002.csv.gz``,
``…-3of8.csv``): each part loads and they add up; a part sent again is a correction of that
part only; a file without a part sent again is still a correction of the whole day."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from exports_kit import Lake, counts, csv_text, landing_file, make_config, row

from insightloop.exports.landing import period_and_part
from insightloop.exports.raw_load import FileRecord
from insightloop.exports.status import files_status


@pytest.mark.parametrize(
    ("name", "period", "part"),
    [
        ("contacts_2026-11-25_part-001.csv", "2026-11-25", "1"),
        ("contacts_2026-11-25_part001.csv", "2026-11-25", "1"),
        ("contacts_2026-11-25_002.csv.gz", "2026-11-25", "2"),
        ("contacts_2026-11-25-3of8.csv", "2026-11-25", "3"),
        ("contacts_20261125_Part_4-of-8.jsonl", "2026-11-25", "4"),
        ("contacts_2026-11-25_p1.csv", "2026-11-25", "1"),
        ("contacts_2026-11-25.csv", "2026-11-25", ""),
        ("contacts_2026-11-25_v2.csv", "2026-11-25", ""),  # a version: a correction
        ("contacts_2026-11-25_resent.csv", "2026-11-25", ""),
        ("contacts_2026-11-25_1430.csv", "2026-11-25", ""),  # a time, not a part
        ("contacts_2026-11-25_2026-11-26.csv", "2026-11-25", ""),
        ("contacts_part-1.csv", None, ""),  # parts are read after a date only
    ],
)
def test_the_part_is_read_after_the_date(name: str, period: str | None, part: str) -> None:
    assert period_and_part(name) == (period, part)


def test_two_parts_of_one_day_each_load_and_add_up(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    lake = Lake(config)
    day1 = [row(i, "2026-11-24", score=10 + i) for i in (1, 2)]
    part1 = [row(i, score=20 + i) for i in range(1, 6)]  # keys 1-5
    part2 = [row(i, hour=12, score=30 + i) for i in range(5, 9)]  # keys 5-8; key 5 newer here
    part3 = [row(i, score=40 + i) for i in (9, 10)]
    lake.load(landing_file(tmp_path, "contacts_2026-11-24.csv", csv_text(day1)))
    first = lake.load(landing_file(tmp_path, "contacts_2026-11-25_part-001.csv", csv_text(part1)))
    second = lake.load(
        landing_file(tmp_path, "contacts_2026-11-25_002.csv.gz", csv_text(part2), compress=True)
    )
    assert first.record is not None and second.record is not None
    assert (first.record.part, first.record.replaces) == ("1", None)
    assert (second.record.part, second.record.replaces) == ("2", None)
    assert lake.counts() == counts(2 + 5 + 4, 0, 8, 0)
    cleaned = lake.cleaned()
    assert sorted(cleaned, key=int) == [str(i) for i in range(1, 9)]
    assert {key: r["score"] for key, r in cleaned.items()} == {
        "1": 21,  # part 1's, newer than day 1's
        "2": 22,
        "3": 23,
        "4": 24,
        "5": 35,  # part 2's later version
        "6": 36,
        "7": 37,
        "8": 38,
    }

    third = lake.load(landing_file(tmp_path, "contacts_2026-11-25-3of8.csv", csv_text(part3)))
    assert third.record is not None and (third.record.part, third.record.replaces) == ("3", None)
    assert lake.counts() == counts(2 + 5 + 4 + 2, 0, 10, 0)
    parts = {s.uri.rsplit("/", 1)[-1]: (s.status, s.period, s.part) for s in files_status(config)}
    assert parts == {
        "contacts_2026-11-24.csv": ("loaded", "2026-11-24", ""),
        "contacts_2026-11-25_part-001.csv": ("loaded", "2026-11-25", "1"),
        "contacts_2026-11-25_002.csv.gz": ("loaded", "2026-11-25", "2"),
        "contacts_2026-11-25-3of8.csv": ("loaded", "2026-11-25", "3"),
    }


def test_a_corrected_part_replaces_only_that_part(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    part1 = [row(i, score=10 + i) for i in range(1, 5)]  # keys 1-4
    part2 = [row(4, hour=12, score=24)] + [row(i, score=20 + i) for i in range(5, 9)]  # 4 (newer), 5-8
    first = lake.load(landing_file(tmp_path, "contacts_2026-11-25_part-001.csv", csv_text(part1)))
    second = lake.load(landing_file(tmp_path, "contacts_2026-11-25_part-002.csv", csv_text(part2)))
    assert lake.counts() == counts(4 + 5, 0, 8, 0)
    assert lake.cleaned()["4"]["score"] == 24

    # Part 2 sent again under the same name: it lacks keys 4, 7 and 8 and changes 5 and 6.
    corrected = [row(i, hour=13, score=30 + i) for i in (5, 6)]
    path = landing_file(tmp_path, "contacts_2026-11-25_part-002.csv", csv_text(corrected))
    outcome = lake.load(path)
    assert outcome.status == "loaded"
    assert first.record is not None and second.record is not None and outcome.record is not None
    assert (outcome.record.part, outcome.record.replaces) == ("2", second.record.sha256)
    assert lake.counts() == counts(4 + 5 + 2, 0, 6, 0)
    cleaned = lake.cleaned()
    assert {key: (r["score"], r["_file_sha256"]) for key, r in cleaned.items()} == {
        "1": (11, first.record.sha256),
        "2": (12, first.record.sha256),
        "3": (13, first.record.sha256),
        "4": (14, first.record.sha256),  # part 1's version again: the replaced part 2 had beaten it
        "5": (35, outcome.record.sha256),
        "6": (36, outcome.record.sha256),
    }

    # Part 1 sent again with zero padding of its own: still part 1, and part 2 stays.
    again = [row(i, hour=14, score=50 + i) for i in (1, 2)]
    outcome = lake.load(landing_file(tmp_path, "contacts_2026-11-25_p1.csv", csv_text(again)))
    assert outcome.record is not None and outcome.record.replaces == first.record.sha256
    assert lake.counts() == counts(4 + 5 + 2 + 2, 0, 4, 0)
    assert {key: r["score"] for key, r in lake.cleaned().items()} == {"1": 51, "2": 52, "5": 35, "6": 36}


def test_a_file_without_a_part_sent_again_is_still_a_correction(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    whole = [row(i, score=10 + i) for i in range(1, 5)]  # keys 1-4
    first = lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(whole)))
    assert first.record is not None and first.record.part == ""

    corrected = [row(i, hour=11, score=20 + i) for i in (1, 2, 3)]  # key 4 dropped
    second = lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(corrected)))
    assert second.record is not None and second.record.replaces == first.record.sha256
    assert lake.counts() == counts(4 + 3, 0, 3, 0)

    resent = [row(i, hour=12, score=30 + i) for i in (1, 2)]  # another name, same day, no part
    third = lake.load(
        landing_file(tmp_path, "contacts_2026-11-25_resent.csv.gz", csv_text(resent), compress=True)
    )
    assert third.record is not None and third.record.replaces == second.record.sha256
    assert lake.counts() == counts(4 + 3 + 2, 0, 2, 0)
    assert {key: r["score"] for key, r in lake.cleaned().items()} == {"1": 31, "2": 32}


def test_a_file_record_from_before_parts_reads_as_no_part() -> None:
    old = {
        "sha256": "ab" * 32,
        "uri": "landing/hubspot/contacts/contacts_2026-11-25.csv",
        "source": "hubspot",
        "entity": "contacts",
        "period": "2026-11-25",
        "contract": "export/contacts",
        "seq": 1,
        "rows": 3,
        "bad_rows": 0,
        "bytes": 100,
        "loaded_at": "2026-11-25T10:00:00+00:00",
    }
    record = msgspec.json.decode(msgspec.json.encode(old), type=FileRecord)
    assert record.part == ""
    assert msgspec.json.decode(msgspec.json.encode(record)) == old  # a file without a part: as before
    parted = msgspec.structs.replace(record, part="2")
    assert msgspec.json.decode(msgspec.json.encode(parted)) == {**old, "part": "2"}
