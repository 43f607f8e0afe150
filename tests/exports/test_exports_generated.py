"""The demo's generated CRM exports (duplicate keys across days, bad dates, a latin-1 name in
a UTF-8 file, stray quotes, a missing key, a column added on day 3, a gzip file) load under
the repository's contract with exactly the rows the generator says."""

from __future__ import annotations

from pathlib import Path

from exports_kit import Lake

from insightloop.config import load_config
from insightloop.exports.generate import daily_exports
from insightloop.exports.landing import Landing

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def test_generated_exports_load_exactly(tmp_path: Path) -> None:
    config = load_config(
        environ={
            "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
            "INSIGHTLOOP__CONTRACTS__DIR": str(REPO_CONTRACTS),
            "INSIGHTLOOP__EXPORTS__LANDING": str(tmp_path / "landing"),
            "INSIGHTLOOP__EXPORTS__MAX_BAD_FRACTION": "0.05",
            "INSIGHTLOOP__EXPORTS__METRICS_PORT": "0",
        }
    )
    days = daily_exports(tmp_path / "landing", days=3, contacts=2000, mess=0.003)
    lake = Lake(config)
    outcomes = [lake.loader.load(file) for file in Landing.from_config(config).discover()]
    assert [o.status for o in outcomes] == ["loaded"] * 3
    good = sum(d.rows - d.bad for d in days)
    bad = sum(d.bad for d in days)
    assert bad > 0 and sum(d.stray_quotes for d in days) > 0
    streams = lake.column("raw.export_rows", "stream")
    assert (streams.count("export"), streams.count("rejected")) == (good, bad)
    assert len(lake.column("quarantine.export_rows", "event_id")) == bad
    keys = set().union(*(d.keys for d in days))
    cleaned = lake.column("cleaned.crm_contacts", "contact_id")
    assert sorted(cleaned) == sorted(keys)
    regions = lake.column("cleaned.crm_contacts", "region")
    assert any(r is None for r in regions) and any(r is not None for r in regions)
