"""Encoding and quoting trouble: latin-1 and UTF-16 files under a contract that says so, a
UTF-8 byte-order mark, latin-1 bytes in a UTF-8 file (that row quarantined), a stray quote
inside a field, an embedded newline in a quoted field, an unterminated quote."""

from __future__ import annotations

from pathlib import Path

from exports_kit import Lake, contract, counts, csv_text, landing_file, make_config, row


def test_latin1_and_utf16_files(tmp_path: Path) -> None:
    text = csv_text([row(1, email="café@example.com"), row(2, email="Ñandú@example.com")])
    latin = Lake(make_config(tmp_path / "latin", contract(encoding="latin-1")))
    latin.load(landing_file(tmp_path / "latin", "contacts_2026-11-25.csv", text.encode("latin-1")))
    assert latin.counts() == counts(2, 0, 2, 0)
    assert latin.cleaned()["1"]["email"] == "café@example.com"

    utf16 = Lake(make_config(tmp_path / "utf16", contract(encoding="utf-16")))
    utf16.load(landing_file(tmp_path / "utf16", "contacts_2026-11-25.csv", text.encode("utf-16")))
    assert utf16.counts() == counts(2, 0, 2, 0)
    assert utf16.cleaned()["2"]["email"] == "Ñandú@example.com"


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    data = b"\xef\xbb\xbf" + csv_text([row(1), row(2)]).encode()
    assert lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", data)).status == "loaded"
    assert lake.counts() == counts(2, 0, 2, 0)
    assert sorted(lake.cleaned()) == ["1", "2"]


def test_latin1_bytes_in_a_utf8_file_quarantine_their_row(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    good = csv_text([row(1), row(2)]).encode()
    bad = csv_text([row(3, email="café@example.com")]).encode("latin-1").split(b"\n", 1)[1]
    lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", good + bad))
    assert lake.counts() == counts(2, 1, 2, 1)
    (quarantined,) = lake.rows("quarantine.export_rows")
    assert (quarantined["kind"], quarantined["line"]) == ("invalid_utf8", 4)


def test_stray_quote_and_embedded_newline(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    text = csv_text([row(1), row(2, email="multi\nline@example.com")])
    text += '3,ann "the" o\'neil,5,1.0,2026-01-01,2026-11-25T10:00:00Z\n'
    assert lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", text)).status == "loaded"
    assert lake.counts() == counts(3, 0, 3, 0)
    cleaned = lake.cleaned()
    assert cleaned["2"]["email"] == "multi\nline@example.com"
    assert cleaned["3"]["email"] == 'ann "the" o\'neil'


def test_an_unterminated_quote_makes_one_bad_row_of_the_rest(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path, max_bad_fraction=1.0))
    text = csv_text([row(1), row(2)]) + '3,"never closed,5,1.0,2026-01-01,2026-11-25T10:00:00Z\n'
    text += csv_text([row(4)]).split("\n", 1)[1]
    lake.load(landing_file(tmp_path, "contacts_2026-11-25.csv", text))
    assert lake.counts() == counts(2, 1, 2, 1)
    (quarantined,) = lake.rows("quarantine.export_rows")
    assert quarantined["line"] == 4 and quarantined["payload"].startswith(b'3,"never closed')
