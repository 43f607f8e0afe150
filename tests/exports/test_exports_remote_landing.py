"""A landing zone that is not a local folder (S3 in production) is listed, hashed and read
through the same ``pyarrow.fs`` object: here a ``SubTreeFileSystem``, which, like an S3
prefix, is not ``LocalFileSystem`` and names files relative to its root."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.fs as pafs
from exports_kit import ENTITY, SOURCE, Lake, counts, csv_text, make_config, row

from insightloop.exports.landing import Landing


def test_files_of_a_remote_style_landing_zone_load(tmp_path: Path) -> None:
    root = tmp_path / "bucket" / "prefix"
    folder = root / SOURCE / ENTITY
    folder.mkdir(parents=True)
    (folder / "contacts_2026-11-24.csv.gz").write_bytes(gzip.compress(csv_text([row(1), row(2)]).encode()))
    (folder / "contacts_2026-11-25.jsonl").write_text(json.dumps(row(3)) + "\n")
    landing = Landing(pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem()), "", "s3://bucket/prefix/")
    found = landing.discover()
    assert [f.uri for f in found] == [
        "s3://bucket/prefix/hubspot/contacts/contacts_2026-11-24.csv.gz",
        "s3://bucket/prefix/hubspot/contacts/contacts_2026-11-25.jsonl",
    ]
    lake = Lake(make_config(tmp_path))
    assert [lake.loader.load(file).status for file in found] == ["loaded", "loaded"]
    assert lake.counts() == counts(3, 0, 3, 0)
    origins = lake.column("raw.export_rows", "origin")
    assert sorted(origins) == [
        "file:s3://bucket/prefix/hubspot/contacts/contacts_2026-11-24.csv.gz",
        "file:s3://bucket/prefix/hubspot/contacts/contacts_2026-11-24.csv.gz",
        "file:s3://bucket/prefix/hubspot/contacts/contacts_2026-11-25.jsonl",
    ]
