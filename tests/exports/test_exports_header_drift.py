"""Header drift, per the contract's policy: a new column is added to the cleaned table in
place (earlier rows read null), a missing optional column is null, reordered columns are
taken by name; with ``new_columns = "reject"`` a new column rejects the file."""

from __future__ import annotations

from pathlib import Path

from exports_kit import HEADER, Lake, contract, counts, csv_text, landing_file, make_config, row


def test_new_missing_and_reordered_columns(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path))
    lake.load(landing_file(tmp_path, "contacts_2026-11-23.csv", csv_text([row(1, "2026-11-23")])))

    with_new = [*HEADER, "region"]
    day2 = [row(2, "2026-11-24", region="emea")]
    assert (
        lake.load(landing_file(tmp_path, "contacts_2026-11-24.csv", csv_text(day2, with_new))).status
        == "loaded"
    )

    reordered_missing = ["updated_at", "score", "id", "region"]  # no email, amount, signup
    day3 = [row(3, "2026-11-25", score=7, region="apac")]
    path = landing_file(tmp_path, "contacts_2026-11-25.csv", csv_text(day3, reordered_missing))
    assert lake.load(path).status == "loaded"

    assert lake.counts() == counts(3, 0, 3, 0)
    cleaned = lake.cleaned()
    assert cleaned["1"]["region"] is None  # loaded before the column existed
    assert (cleaned["2"]["region"], cleaned["2"]["email"]) == ("emea", "user2@example.com")
    three = cleaned["3"]
    assert (three["region"], three["score"], three["email"], three["amount"]) == ("apac", 7, None, None)
    table = lake.catalog.load_table("cleaned.crm_contacts")
    assert table.schema().column_names[-1] == "region"  # added in place, after the existing columns


def test_a_new_column_under_the_reject_policy_rejects_the_file(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path, contract(new_columns="reject")))
    path = landing_file(
        tmp_path, "contacts_2026-11-25.csv", csv_text([row(1, region="x")], [*HEADER, "region"])
    )
    outcome = lake.load(path)
    assert outcome.status == "rejected" and outcome.reason is not None and "region" in outcome.reason
    assert lake.counts() == counts(0, 0, 0, 0)


def test_a_new_column_under_the_ignore_policy_stays_in_raw(tmp_path: Path) -> None:
    lake = Lake(make_config(tmp_path, contract(new_columns="ignore")))
    path = landing_file(
        tmp_path, "contacts_2026-11-25.csv", csv_text([row(1, region="x")], [*HEADER, "region"])
    )
    assert lake.load(path).status == "loaded"
    assert lake.counts() == counts(1, 0, 1, 0)
    assert "region" not in lake.cleaned()["1"]
    assert b'"region":"x"' in lake.rows("raw.export_rows")[0]["payload"]
