"""Lake names of a captured table: ``public.users`` → ``cleaned.app_users`` (current state)
and ``cleaned.app_users_changes`` (history); a table of another schema keeps it,
``billing.invoices`` → ``cleaned.app_billing_invoices``. Names are lower-cased and every
character outside ``[a-z0-9_]`` becomes ``_``."""

from __future__ import annotations

import re

from insightloop.lake.ownership import CDC_PREFIX

CLEANED = "cleaned"
PREFIX = CDC_PREFIX  # reserved for CDC in cleaned (lake.ownership)
HISTORY_SUFFIX = "_changes"
_UNSAFE = re.compile(r"[^a-z0-9_]")


def base_name(source_table: str) -> str:
    """``schema.table`` → ``app_<table>`` (``app_<schema>_<table>`` outside ``public``)."""
    schema, _, table = source_table.rpartition(".")
    parts = [table] if schema in ("", "public") else [schema, table]
    return PREFIX + _UNSAFE.sub("_", "_".join(parts).lower())


def state_identifier(source_table: str) -> str:
    return f"{CLEANED}.{base_name(source_table)}"


def history_identifier(source_table: str) -> str:
    return f"{CLEANED}.{base_name(source_table)}{HISTORY_SUFFIX}"
