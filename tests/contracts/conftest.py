from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from contracts_kit import WriteContract, contract_schema


@pytest.fixture
def write_contract() -> WriteContract:
    """``write_contract(root, kind, name, version, properties, required)`` → the file written."""

    def write(
        root: Path,
        kind: str,
        name: str,
        version: str,
        properties: dict[str, Any],
        required: list[str] | None = None,
        **extra: Any,
    ) -> Path:
        path = root / kind / name / f"{version}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        schema = contract_schema(name, version, properties, required, **extra)
        path.write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2))
        return path

    return write
