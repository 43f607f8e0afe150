"""config/minimal.toml and config/reference.toml load, and the reference names every key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from insightloop.config import Config, load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def keys_of(struct: type[msgspec.Struct], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for field in msgspec.structs.fields(struct):
        kind: Any = field.type
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            out |= keys_of(kind, f"{prefix}{field.name}.")
        else:
            out.add(prefix + field.name)
    return out


#: Keys whose values are maps (name → settings): one key each, however many entries.
MAPS = {"collector.sources", "contracts.sources", "contracts.contracts"}


def flat(data: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict) and prefix + key not in MAPS:
            out |= flat(value, f"{prefix}{key}.")
        else:
            out.add(prefix + key)
    return out


@pytest.mark.parametrize("name", ["minimal.toml", "reference.toml"])
def test_config_file_loads(name: str) -> None:
    load_config(CONFIG_DIR / name, environ={})


def test_reference_names_every_key_with_its_default() -> None:
    reference = tomllib.loads((CONFIG_DIR / "reference.toml").read_text())
    assert flat(reference) == keys_of(Config)
    assert load_config(CONFIG_DIR / "reference.toml", environ={}) == load_config(environ={})
