"""Helpers of the contracts tests: contract files and small git repositories."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"

WriteContract = Callable[..., Path]


def contract_schema(
    name: str,
    version: str,
    properties: dict[str, Any],
    required: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "self": {"vendor": "insightloop", "name": name, "format": "jsonschema", "version": version},
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
        **extra,
    }


def git(repo: Path, *args: str) -> None:
    """Run git in ``repo`` with a throwaway identity (tests build small repositories)."""
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        check=True,
        capture_output=True,
    )
