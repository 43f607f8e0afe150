"""Quarantine, read back: which rows a command is about (``Selection``), and reading them
through the warehouse (``reading``, ``counts``). Stage 2 writes the table
(``insightloop.processor.cleaned.quarantine``); this package only reads it.
"""

from insightloop.quarantine.selection import KINDS, Selection, SelectionError, parse_moment

__all__ = ["KINDS", "Selection", "SelectionError", "parse_moment"]
