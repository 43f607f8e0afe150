"""How deeply JSON nests, measured without a parser (so a hostile depth cannot hurt).

The hot path is ``within_depth``: the number of ``{`` and ``[`` bytes bounds the depth from
above, so an event with few of them is proven fine at the cost of two ``bytes.count``
calls. Only events with more brackets than the limit get the exact scan, which skips
strings with one regex and sums the brackets in C (``itertools.accumulate``).
"""

from __future__ import annotations

import re
from itertools import accumulate

#: A JSON string, escapes included (possessive: no backtracking on hostile input).
STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("{")] = _STEP[ord("[")] = 1
_STEP[ord("}")] = _STEP[ord("]")] = -1


def within_depth(raw: bytes, limit: int) -> bool:
    """Whether ``raw`` nests no deeper than ``limit`` (a top-level object is depth 1)."""
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return True
    return max_depth(raw) <= limit


def max_depth(raw: bytes) -> int:
    """The deepest nesting of objects and arrays in ``raw``, ignoring brackets in strings."""
    brackets = STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
