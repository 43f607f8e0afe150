"""Errors of the contracts package: a contract file or a contracts folder that cannot be used.

Bad *events* are never errors here (they are violations, see ``validate``); these are faults
a person must fix in the contracts themselves, so they are terminal.
"""

from __future__ import annotations

from insightloop.errors import TerminalError


class ContractError(TerminalError):
    """A contract file, version or folder is malformed; the message names the file."""


class SchemaVerError(ContractError, ValueError):
    """A version is not SchemaVer (``MODEL-REVISION-ADDITION``, e.g. ``1-0-2``)."""


class GitError(ContractError):
    """Git could not show the base revision of the contracts (not a repository, unknown revision)."""
