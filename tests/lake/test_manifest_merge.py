"""Tables we create merge their manifests: frequent small appends must not pile up one
manifest per commit in every snapshot (scan planning would read them all)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from insightloop.config import load_config
from insightloop.lake.catalog import open_catalog
from insightloop.lake.raw_table import RAW_ARROW_SCHEMA, ensure_raw_table


def _row(i: int) -> pa.Table:
    import datetime as dt

    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    values = {
        "event_id": f"e{i}", "source": "web", "stream": "track", "schema_name": "x", "schema_version": None,
        "event_time": now, "received_at": now, "subject_user_id": None, "subject_anonymous_id": "a",
        "subject_account_id": None, "subject_email_sha256": None, "payload": b"{}", "delivery": None,
        "rejection": None, "origin": f"log:shard-0:{i}:0", "ingest_seq": i,
    }  # fmt: skip
    return pa.Table.from_pylist([values], schema=RAW_ARROW_SCHEMA)


def test_many_small_appends_keep_the_manifest_list_short(tmp_path: Path) -> None:
    catalog = open_catalog(load_config(environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path)}))
    table = ensure_raw_table(catalog)
    appends = 130
    for i in range(appends):
        table.append(_row(i))
    snapshot = table.current_snapshot()
    assert snapshot is not None
    manifests = snapshot.manifests(table.io)
    assert len(manifests) < 101, f"{len(manifests)} manifests after {appends} appends"
    assert table.scan().to_arrow().num_rows == appends
