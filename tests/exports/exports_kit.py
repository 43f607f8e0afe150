"""Helpers of the export tests: a lake with a test contract, files to load, and counts."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

import insightloop
from insightloop.config import Config, load_config
from insightloop.exports.landing import LandedFile, local_files
from insightloop.exports.loader import FileLoader, LoadOutcome
from insightloop.lake.catalog import open_catalog

SOURCE = "hubspot"
ENTITY = "contacts"
HEADER = ["id", "email", "score", "amount", "signup", "updated_at"]


def contract(
    *,
    encoding: str = "utf-8",
    new_columns: str = "add",
    required: Sequence[str] = ("id", "updated_at"),
) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "self": {"vendor": "insightloop", "name": ENTITY, "format": "jsonschema", "version": "1-0-0"},
        "type": "object",
        "x-insightloop-export": {
            "primary_key": ["id"],
            "updated_at": "updated_at",
            "subject_keys": {"user_id": "id", "email": "email"},
            "new_columns": new_columns,
            "csv": {"delimiter": ",", "quote": '"', "encoding": encoding},
        },
        "properties": {
            "id": {"type": "string"},
            "email": {"type": ["string", "null"]},
            "score": {"type": ["integer", "null"]},
            "amount": {"type": ["number", "null"]},
            "signup": {"type": ["string", "null"], "format": "date"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
        "required": list(required),
    }


def make_config(tmp_path: Path, contract_doc: dict[str, Any] | None = None, **exports: Any) -> Config:
    contracts = tmp_path / "contracts"
    folder = contracts / "export" / ENTITY
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "1-0-0.json").write_text(json.dumps(contract_doc or contract()))
    environ = {
        "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
        "INSIGHTLOOP__CONTRACTS__DIR": str(contracts),
        "INSIGHTLOOP__EXPORTS__METRICS_PORT": "0",
        "INSIGHTLOOP__EXPORTS__MAX_BAD_ROWS": str(exports.pop("max_bad_rows", 100)),
        "INSIGHTLOOP__EXPORTS__MAX_BAD_FRACTION": str(exports.pop("max_bad_fraction", 0.5)),
    }
    for key, value in exports.items():
        environ[f"INSIGHTLOOP__EXPORTS__{key.upper()}"] = str(value)
    return load_config(environ=environ)


def row(key: int | str, day: str = "2026-11-25", hour: int = 10, **over: Any) -> dict[str, Any]:
    values = {
        "id": str(key),
        "email": f"user{key}@example.com",
        "score": str(int(str(key).strip("x") or 0) % 100),
        "amount": "12.5",
        "signup": "2026-01-02",
        "updated_at": f"{day}T{hour:02d}:00:00Z",
    }
    values.update({k: "" if v is None else str(v) for k, v in over.items()})
    return values


def csv_text(rows: Iterable[dict[str, Any]], header: Sequence[str] = HEADER) -> str:
    lines = [",".join(header)]
    for values in rows:
        lines.append(",".join(_quote(str(values.get(name, ""))) for name in header))
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def landing_file(tmp_path: Path, name: str, data: bytes | str, *, compress: bool = False) -> Path:
    """Write a file at ``<tmp>/in/<source>/<entity>/<name>``."""
    path = tmp_path / "in" / SOURCE / ENTITY / name
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


class Lake:
    """A config's lake, loaded through one ``FileLoader`` (as ``insightloop load`` does)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.catalog: Catalog = open_catalog(config)
        self.loader = FileLoader(config, self.catalog)

    def load(self, path: Path) -> LoadOutcome:
        (file,) = files(path)
        return self.loader.load(file)

    def rows(self, identifier: str) -> list[dict[str, Any]]:
        try:
            table = self.catalog.load_table(identifier)
        except NoSuchTableError:
            return []
        return table.scan().to_arrow().to_pylist()

    def column(self, identifier: str, name: str) -> list[Any]:
        try:
            table = self.catalog.load_table(identifier)
        except NoSuchTableError:
            return []
        return table.scan(selected_fields=(name,)).to_arrow().column(name).to_pylist()

    def counts(self) -> dict[str, int]:
        streams = Counter(self.column("raw.export_rows", "stream"))
        return {
            "raw": streams.total(),
            "raw_good": streams["export"],
            "raw_bad": streams["rejected"],
            "cleaned": len(self.column(f"cleaned.crm_{ENTITY}", "id")),
            "quarantine": len(self.column("quarantine.export_rows", "event_id")),
        }

    def cleaned(self) -> dict[str, dict[str, Any]]:
        """Cleaned rows by id."""
        return {r["id"]: r for r in self.rows(f"cleaned.crm_{ENTITY}")}


def files(path: Path) -> list[LandedFile]:
    return local_files(path, SOURCE, ENTITY)


def counts(raw_good: int, raw_bad: int, cleaned: int, quarantine: int) -> dict[str, int]:
    return {
        "raw": raw_good + raw_bad,
        "raw_good": raw_good,
        "raw_bad": raw_bad,
        "cleaned": cleaned,
        "quarantine": quarantine,
    }


def environment(tmp_path: Path) -> dict[str, str]:
    src = str(Path(insightloop.__file__).parent.parent)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
        "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
        "INSIGHTLOOP__CONTRACTS__DIR": str(tmp_path / "contracts"),
        "INSIGHTLOOP__EXPORTS__BATCH_ROWS": "20000",
    }


def on_disk(table_folder: Path) -> set[str]:
    """The Parquet data files under a table's folder."""
    return {str(path) for path in table_folder.rglob("*.parquet")}
