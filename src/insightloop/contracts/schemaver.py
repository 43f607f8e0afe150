"""SchemaVer (``MODEL-REVISION-ADDITION``, as in Snowplow's Iglu): parse, order, bump.

- MODEL: a breaking change; events of the old version cannot be read with the new one. A new
  major version lands in its own table (``<event>_v2``).
- REVISION: a change some producers or readers may notice but Iceberg can apply in place
  (a type promotion, a relaxed constraint).
- ADDITION: new optional properties only; every earlier event is still valid.

Versions are written ``1-0-0``: three non-negative integers without leading zeros, the model
starting at 1.
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple

from insightloop.contracts.errors import SchemaVerError

_PATTERN = re.compile(r"(0|[1-9][0-9]*)-(0|[1-9][0-9]*)-(0|[1-9][0-9]*)")


class Level(enum.IntEnum):
    """How big a change (or a version bump) is, smallest first."""

    NONE = 0
    ADDITION = 1
    REVISION = 2
    MODEL = 3

    def __str__(self) -> str:
        return self.name


class SchemaVer(NamedTuple):
    """A version; tuples order the way versions do (``1-0-10`` > ``1-0-9``)."""

    model: int
    revision: int
    addition: int

    @classmethod
    def parse(cls, text: str) -> SchemaVer:
        """``"1-0-2"`` → ``SchemaVer(1, 0, 2)``; ``SchemaVerError`` saying why otherwise."""
        if not isinstance(text, str):
            raise SchemaVerError(f"version must be a string like '1-0-0', got {text!r}")
        match = _PATTERN.fullmatch(text)
        if match is None:
            hint = " (SchemaVer uses dashes: MODEL-REVISION-ADDITION)" if "." in text else ""
            raise SchemaVerError(
                f"version {text!r} is not SchemaVer MODEL-REVISION-ADDITION, e.g. '1-0-0'{hint}"
            )
        version = cls(*(int(part) for part in match.groups()))
        if version.model < 1:
            raise SchemaVerError(f"version {text!r}: MODEL starts at 1 ('1-0-0' is the first version)")
        return version

    def __str__(self) -> str:
        return f"{self.model}-{self.revision}-{self.addition}"

    def bump_level(self, newer: SchemaVer) -> Level | None:
        """How big the bump from ``self`` to ``newer`` is; None if ``newer`` is not newer."""
        if newer <= self:
            return Level.NONE if newer == self else None
        if newer.model != self.model:
            return Level.MODEL
        if newer.revision != self.revision:
            return Level.REVISION
        return Level.ADDITION

    def next(self, level: Level) -> SchemaVer:
        """The smallest version after this one that bumps ``level``."""
        if level is Level.MODEL:
            return SchemaVer(self.model + 1, 0, 0)
        if level is Level.REVISION:
            return SchemaVer(self.model, self.revision + 1, 0)
        if level is Level.ADDITION:
            return SchemaVer(self.model, self.revision, self.addition + 1)
        return self
