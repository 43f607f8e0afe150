"""Quoting names and values into DuckDB SQL (file headers are data: never trust them)."""

from __future__ import annotations


def ident(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """A quoted string literal."""
    return "'" + value.replace("'", "''") + "'"


def json_path(name: str) -> str:
    """The JSON path literal of a top-level key: ``'$."name"'``."""
    return lit("$." + '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"')


def json_key(name: str) -> str:
    """A JSON string of ``name`` (a key in a ``json_transform`` shape)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
