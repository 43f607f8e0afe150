"""Which quarantined rows a command is about: a ``Selection`` of ``quarantine.sdk_events``.

One selection, two ways to apply it, so every quarantine command picks the same rows:

- ``Selection.row_filter()``: a pyiceberg row filter, for table scans
  (``table.scan(row_filter=selection.row_filter())``; ``quarantine replay`` reads this way);
- ``Selection.sql()``: a DuckDB condition with bound parameters, for the warehouse views
  (``f"SELECT … FROM quarantine.sdk_events WHERE {where}"``, ``params``).

Every criterion narrows the selection; several values of one criterion (two sources, two
kinds, …) match any of them. ``contract`` is an exact key (``track/invite_sent/1-0-0``) or a
prefix of whole segments (``track/invite_sent``, ``track``). ``since`` is inclusive and
``until`` exclusive, both on ``received_at``. ``limit`` is not a filter: it caps how many rows
a command shows or replays.

``Selection.parse`` builds one from user input (the CLI options) and raises
``SelectionError`` (bad usage: exit code 2) on an unknown kind, a bad time or contract.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    In,
    LessThan,
    Or,
    StartsWith,
)

from insightloop.types import FailureKind

#: Failure kinds stored in quarantine: the spec's and contracts' (``FailureKind``), and
#: ``rejected`` (a collector rejection that recorded no kind).
KINDS: tuple[str, ...] = (*(kind.value for kind in FailureKind), "rejected")

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-]+$")


class SelectionError(ValueError):
    """A selection option is not valid (bad usage): the message names the option."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Quarantined rows to look at or replay; empty criteria select everything."""

    sources: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    #: Exact contract keys (``kind/name/version``) or segment prefixes (``kind/name``).
    contracts: tuple[str, ...] = ()
    #: Inclusive lower bound on ``received_at`` (aware, UTC).
    since: dt.datetime | None = None
    #: Exclusive upper bound on ``received_at`` (aware, UTC).
    until: dt.datetime | None = None
    event_ids: tuple[str, ...] = ()
    limit: int | None = None

    @classmethod
    def parse(
        cls,
        *,
        sources: Iterable[str] = (),
        streams: Iterable[str] = (),
        kinds: Iterable[str] = (),
        contracts: Iterable[str] = (),
        since: str | None = None,
        until: str | None = None,
        event_ids: Iterable[str] = (),
        limit: int | None = None,
        now: dt.datetime | None = None,
    ) -> Selection:
        """A selection from user input. ``since``/``until`` take ISO 8601 (a time without a
        zone is UTC) or an age before ``now`` (``90s``, ``30m``, ``2h``, ``3d``, ``1w``)."""
        moment = now or dt.datetime.now(dt.UTC)
        kind_list = tuple(kinds)
        for kind in kind_list:
            if kind not in KINDS:
                raise SelectionError(f"--kind: unknown failure kind {kind!r} (one of: {', '.join(KINDS)})")
        contract_list = tuple(contracts)
        for contract in contract_list:
            _check_contract(contract)
        if limit is not None and limit < 1:
            raise SelectionError(f"--limit: must be at least 1, not {limit}")
        start = parse_moment(since, moment, "--since")
        end = parse_moment(until, moment, "--until")
        if start is not None and end is not None and start >= end:
            raise SelectionError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
        return cls(
            sources=tuple(sources),
            streams=tuple(streams),
            kinds=kind_list,
            contracts=contract_list,
            since=start,
            until=end,
            event_ids=tuple(event_ids),
            limit=limit,
        )

    def row_filter(self) -> BooleanExpression:
        """The selection as a pyiceberg row filter over ``quarantine.sdk_events`` (``limit``
        not included). Timestamps are bound as microseconds since the epoch, UTC."""
        parts: list[BooleanExpression] = []
        for column, values in (
            ("source", self.sources),
            ("stream", self.streams),
            ("kind", self.kinds),
            ("event_id", self.event_ids),
        ):
            if values:
                parts.append(
                    _predicate(EqualTo, column, values[0])
                    if len(values) == 1
                    else _predicate(In, column, values)
                )
        if self.contracts:
            parts.append(_any([_contract_filter(c) for c in self.contracts]))
        if self.since is not None:
            parts.append(_predicate(GreaterThanOrEqual, "received_at", _micros(self.since)))
        if self.until is not None:
            parts.append(_predicate(LessThan, "received_at", _micros(self.until)))
        if not parts:
            return AlwaysTrue()
        return parts[0] if len(parts) == 1 else And(*parts)

    def sql(self) -> tuple[str, list[object]]:
        """The selection as a DuckDB condition over the quarantine view, and its parameters
        (``limit`` not included): ``"true"`` and ``[]`` when it selects everything."""
        parts: list[str] = []
        params: list[object] = []
        for column, values in (
            ("source", self.sources),
            ("stream", self.streams),
            ("kind", self.kinds),
            ("event_id", self.event_ids),
        ):
            if values:
                parts.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if self.contracts:
            alternatives: list[str] = []
            for contract in self.contracts:
                if _is_exact(contract):
                    alternatives.append("contract = ?")
                    params.append(contract)
                else:
                    alternatives.append("starts_with(contract, ?)")
                    params.append(contract.rstrip("/") + "/")
            parts.append("(" + " OR ".join(alternatives) + ")")
        if self.since is not None:
            parts.append("received_at >= ?")
            params.append(self.since)
        if self.until is not None:
            parts.append("received_at < ?")
            params.append(self.until)
        return (" AND ".join(parts) if parts else "true"), params

    def selects_all(self) -> bool:
        """Whether no criterion narrows the selection (``limit`` aside)."""
        return not self.sql()[1]

    def describe(self) -> str:
        """The criteria in a few words, for messages (``"all of quarantine"`` when none)."""
        words: list[str] = []
        for label, values in (
            ("source", self.sources),
            ("stream", self.streams),
            ("kind", self.kinds),
            ("contract", self.contracts),
            ("event id", self.event_ids),
        ):
            if values:
                words.append(f"{label} {'/'.join(values) if label != 'contract' else ' or '.join(values)}")
        if self.since is not None:
            words.append(f"received since {self.since.isoformat()}")
        if self.until is not None:
            words.append(f"received before {self.until.isoformat()}")
        return ", ".join(words) if words else "all of quarantine"


def parse_moment(text: str | None, now: dt.datetime, option: str = "time") -> dt.datetime | None:
    """``text`` as an aware UTC time: ISO 8601 (no zone: UTC) or an age before ``now``."""
    if text is None or not text.strip():
        return None
    relative = _RELATIVE.match(text)
    if relative is not None:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2).lower()]
        return (now - dt.timedelta(seconds=seconds)).astimezone(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise SelectionError(
            f"{option}: {text!r} is neither an ISO 8601 time (2026-11-26T09:30:00Z) "
            "nor an age like 90s, 30m, 2h, 3d, 1w"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _check_contract(contract: str) -> None:
    segments = contract.rstrip("/").split("/")
    if not contract or len(segments) > 3 or not all(_SEGMENT.match(s) for s in segments):
        raise SelectionError(
            f"--contract: {contract!r} is not a contract key (track/invite_sent/1-0-0) "
            "or a prefix of one (track/invite_sent, track)"
        )


def _is_exact(contract: str) -> bool:
    return len(contract.rstrip("/").split("/")) == 3


def _contract_filter(contract: str) -> BooleanExpression:
    if _is_exact(contract):
        return _predicate(EqualTo, "contract", contract)
    return _predicate(StartsWith, "contract", contract.rstrip("/") + "/")


def _predicate(kind: type[BooleanExpression], column: str, value: object) -> BooleanExpression:
    """``kind(column, value)``: pyiceberg's predicates take a column name and a literal (or, for
    ``In``, literals), which their pydantic-era annotations do not say."""
    return cast(Callable[[str, object], BooleanExpression], kind)(column, value)


def _any(expressions: Sequence[BooleanExpression]) -> BooleanExpression:
    return expressions[0] if len(expressions) == 1 else Or(*expressions)


def _micros(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
