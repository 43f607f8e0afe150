"""Table and column names of the cleaned tables: Segment's snake_case, made collision-proof.

``snake_case`` follows Segment's warehouses (go-snakecase): camelCase and PascalCase words
are split (``productID`` → ``product_id``, ``HTTPServer`` → ``http_server``), every run of
other characters (spaces, dots, dashes, ``$`` …) becomes one ``_``, the result is lower
case with no ``_`` at either end. Letters and digits outside ASCII are kept.

A name snake-cased from data therefore never contains ``__``; the double underscore marks
names this package makes up, so they cannot collide with a property's:

- ``<column>__<type>``: a column's twin for values its type cannot hold (see ``coltypes``);
- ``event__<name>``: the per-event table of an event whose snake-cased name is one of the
  fixed tables (``tracks``, ``users`` …), starts with ``app_`` or ``crm_`` (reserved for the
  CDC and export tables, ``lake.ownership``: "App Opened" → ``event__app_opened``), does not
  start with a letter, or is empty (``event__<hash of the original name>``).

Nested keys are joined with ``_`` (``context.page.url`` → ``context_page_url``; a property
``address.city`` → ``address_city``). A property or trait whose column name would be one of
the table's fixed columns (``id``, ``timestamp``, ``event`` …), would start with
``context_``, does not start with a letter, or is empty gets a prefix: ``property_`` for
properties, ``trait_`` for traits (``properties.id`` → ``property_id``). Keys that still
snake-case to the same name share a column (as in Segment).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

from insightloop.lake.ownership import RESERVED_PREFIXES

#: Longest table or column name we make; longer ones are cut and given a hash suffix.
MAX_NAME = 128
#: Marks the names this package makes up (never produced by ``snake_case``).
OURS = "__"

_OTHER = re.compile(r"[^\w]+|_+")
_LOWER_UPPER = re.compile(r"([a-z])([A-Z])|([0-9])([A-Z][a-z])")
_ACRONYM_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")

_snake_cache: dict[str, str] = {}


def snake_case(text: str) -> str:
    """``"Order Completed"`` → ``"order_completed"``, ``"productID"`` → ``"product_id"``."""
    cached = _snake_cache.get(text)
    if cached is not None:
        return cached
    name = _ACRONYM_WORD.sub(r"\1_\2", text)
    name = _LOWER_UPPER.sub(lambda m: "_".join(g for g in m.groups() if g), name)
    name = _OTHER.sub("_", name).strip("_").lower()
    if len(_snake_cache) < 100_000:
        _snake_cache[text] = name
    return name


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def bounded(name: str) -> str:
    """``name``, or when longer than ``MAX_NAME`` its start plus a hash of the whole."""
    if len(name) <= MAX_NAME:
        return name
    return name[: MAX_NAME - 10].rstrip("_") + "_" + short_hash(name)


def event_table_name(event: str, fixed_tables: Collection[str]) -> str:
    """The table (without namespace) holding the track events named ``event``."""
    name = snake_case(event)
    if not name:
        return "event" + OURS + short_hash(event)
    if name in fixed_tables or not name[0].isalpha() or name.startswith(RESERVED_PREFIXES):
        name = "event" + OURS + name
    return bounded(name)


def path_name(path: tuple[str, ...]) -> str:
    """The snake-cased, ``_``-joined name of a nested key path (empty parts dropped)."""
    return "_".join(part for part in map(snake_case, path) if part)


def context_column(path: tuple[str, ...]) -> str:
    name = path_name(path)
    return bounded("context_" + name if name else "context_blank")


def dynamic_column(path: tuple[str, ...], prefix: str, reserved: Collection[str]) -> str:
    """The column of a property or trait at ``path``; ``prefix`` is ``property`` or ``trait``."""
    name = path_name(path)
    if not name:
        return f"{prefix}_blank"
    if name in reserved or name.startswith("context_") or not name[0].isalpha():
        name = f"{prefix}_{name}"
    return bounded(name)


def twin_column(column: str, type_name: str) -> str:
    """The column holding ``column``'s values of type ``type_name`` that it cannot hold."""
    return f"{column}{OURS}{type_name}"
