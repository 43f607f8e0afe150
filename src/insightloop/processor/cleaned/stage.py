"""Stage 2 for SDK events: raw → the cleaned Segment warehouse tables, exactly once.

One ``apply`` per raw batch:

1. rows at or below the watermark are ignored (already complete everywhere);
2. rows that cannot become cleaned rows go to quarantine (``quarantine``);
3. dedup: the first copy of each (source, message id) in raw order is kept, later copies
   (in the batch, or within ``dedup_window_days`` of the first) are dropped (``dedup``);
   before that, messages are checked against their contracts (``contracts``): under
   ``enforce`` an invalid one goes to quarantine instead, takes no part in dedup (a valid
   copy of its id, later in the batch or in a later batch, is loaded) and is not recorded
   as seen;
4. each table's rows are built (``rows``, ``users``) and committed, one commit per table,
   each recording the batch's highest ``ingest_seq``; rows at or below what a table already
   recorded are left out of it (a replay after a crash between two tables' commits);
5. only then are the kept ids and the new watermark written (``dedup.SeenIds``).

So after a crash anywhere, the runner re-applies the rows above ``watermark()``: the
dedup set is exactly as it was before those rows, every decision comes out the same, and
each table adds just the rows it lacks. A table that got no rows in a batch never holds
the watermark back, because the watermark is the stage's own marker, not a minimum over
tables. After a failed ``apply`` (an exception), cached table state is dropped and reloaded.
The contracts are loaded once, when the stage is made: a replay decides as the first run
did as long as the contracts folder is unchanged; after a change, replayed rows are judged
by the new contracts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import BooleanExpression, In

from insightloop.config import Config
from insightloop.processor.cleaned.coltypes import Kind
from insightloop.processor.cleaned.commits import Tables
from insightloop.processor.cleaned.contracts import Contracts
from insightloop.processor.cleaned.dedup import SeenIds, group_by_day, id_keys, read_marker
from insightloop.processor.cleaned.quarantine import Failure, quarantine_rows, rejection_failure
from insightloop.processor.cleaned.reconcile import Column
from insightloop.processor.cleaned.rows import Prepared, build, prepare
from insightloop.processor.cleaned.tables import (
    ARROW_TIME,
    BY_TYPE,
    IDENTIFIES,
    QUARANTINE_SPEC,
    USERS,
    TableSpec,
)
from insightloop.processor.cleaned.users import build_users
from insightloop.segment.message import Message, Problem, decode
from insightloop.types import FailureKind

_log = structlog.get_logger(__name__)

REJECTED = "rejected"
#: Table property: the id of the last quarantine replay the table holds (``replay``).
REPLAY_PROPERTY = "insightloop.replay.applied"
_TYPES = pa.array(sorted(BY_TYPE), pa.string())


@dataclass(slots=True)
class ApplyStats:
    """What the last ``apply`` did (for metrics and benchmarks)."""

    rows: int = 0
    kept: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: Events quarantined for their contract (a violation under ``enforce``, or none at all).
    contract_quarantined: int = 0
    #: Invalid events loaded anyway under ``warn``, and their count by contract key.
    contract_warnings: int = 0
    contract_warned: dict[str, int] = field(default_factory=dict)
    contract_seconds: float = 0.0
    tables: int = 0
    dropped_values: int = 0
    build_seconds: float = 0.0
    commit_seconds: float = 0.0
    #: Rows written to quarantine by (source, kind, contract or ""), for metrics.
    quarantine_counts: dict[tuple[str, str, str], int] = field(default_factory=dict)


def state_directory(config: Config) -> Path:
    """Where the stage keeps its seen ids and watermark."""
    return config.path("processor", "cleaned")


def stored_watermark(config: Config) -> int:
    """``CleanedStage(...).watermark()`` read from disk alone: cheap, for status displays."""
    return read_marker(state_directory(config))


class CleanedStage:
    """``DerivedStage`` writing ``cleaned.*`` and ``quarantine.sdk_events`` from raw SDK events."""

    def __init__(self, catalog: Catalog, config: Config, *, clock: Callable[[], int] | None = None) -> None:
        self._tables = Tables(catalog)
        self._seen = SeenIds(state_directory(config), config.processor.dedup_window_days)
        self._contracts = Contracts.load(config)
        self._clock = clock or (lambda: time.time_ns() // 1000)
        self.stats = ApplyStats()
        #: Called with the stats after each ``apply`` that wrote (metrics hook in here).
        self.observers: list[Callable[[ApplyStats], None]] = []
        #: The id of the replay being applied (``replay``), None while streaming.
        self._replay: str | None = None

    def watermark(self) -> int:
        return self._seen.marker

    def reload(self) -> None:
        """Reload the tables on next use: another writer in this process (compaction,
        snapshot expiry) committed to them, and a stale handle's commit would fail and retry."""
        self._tables.forget()

    def apply(self, raw: pa.Table, messages: Sequence[Message | None] | None = None) -> None:
        try:
            self._apply(raw, messages)
        except BaseException:
            self._tables.forget()
            raise

    def _apply(self, raw: pa.Table, messages: Sequence[Message | None] | None) -> None:
        self.stats = ApplyStats(rows=raw.num_rows)
        if raw.num_rows == 0:
            return
        started = time.perf_counter()
        marker = self._seen.marker
        seqs = raw.column("ingest_seq")
        top: int = pc.max(seqs).as_py()
        if top <= marker:
            return
        if pc.min(seqs).as_py() <= marker:
            mask = pc.greater(seqs, marker)
            if messages is not None:
                messages = [m for m, keep in zip(messages, mask.to_pylist(), strict=True) if keep]
            raw = raw.filter(mask)
        self._derive(raw, messages, top, started)

    def replay(self, raw: pa.Table, request: str) -> ApplyStats:
        """Apply quarantined ``raw`` rows again, under the current contracts (quarantine replay).

        ``raw`` holds raw rows that went to quarantine (any ingest sequence, at or below the
        watermark; the caller leaves out those the collector rejected). Rows that now pass
        land in their tables as if new (a copy already loaded meanwhile, by a corrected
        retry, counts as a duplicate); then, in one commit, every one of them leaves
        ``quarantine.sdk_events`` and those that still fail come back in with today's reasons.
        Each commit records ``request`` (sortable ids: one replay after another) as a table
        property, so a replay re-run after a crash redoes only the tables that lack it, and
        replaying again (a new request) finds only the rows still in quarantine: never two
        rows for one event. The watermark does not move."""
        if raw.num_rows == 0:
            self.stats = ApplyStats()
            return self.stats
        self.stats = ApplyStats(rows=raw.num_rows)
        self._replay = request
        try:
            self._derive(raw, None, self._seen.marker, time.perf_counter())
        except BaseException:
            self._tables.forget()
            raise
        finally:
            self._replay = None
        return self.stats

    def _derive(
        self, raw: pa.Table, messages: Sequence[Message | None] | None, top: int, started: float
    ) -> None:
        """Raw rows (above the watermark, or a replay's) → tables, quarantine and seen ids."""
        stats = self.stats
        now = self._clock()
        failures, good, decoded = _classify(raw, messages)
        resolved = 0
        if self._replay is not None and good:
            # A replayed event whose message id landed meanwhile (a corrected retry) is done:
            # it leaves quarantine as a duplicate, whatever its own bytes say.
            landed = self._seen.recorded(id_keys(raw.column("source"), raw.column("event_id"), good))
            resolved = sum(landed)
            good = [index for index, done in zip(good, landed, strict=True) if not done]
        models: dict[int, int] = {}
        warnings: dict[int, str] = {}
        if good and self._contracts.active:
            good = self._check_contracts(raw, good, decoded, failures, models, warnings)
        keys = id_keys(raw.column("source"), raw.column("event_id"), good)
        fresh = self._seen.fresh(keys)
        kept = [i for i, new in zip(good, fresh, strict=True) if new]
        kept_keys = [k for k, new in zip(keys, fresh, strict=True) if new]
        stats.duplicates = len(good) - len(kept) + resolved

        prepared: Prepared | None = None
        bad: set[int] = set()  # indices into kept
        if kept:
            kept_messages: list[Message] = []
            for i in kept:
                message = decoded[i]
                assert message is not None  # _classify decoded every good row
                kept_messages.append(message)
            prepared = prepare(
                raw,
                kept,
                kept_messages,
                now,
                models=[models.get(i, 1) for i in kept] if models else None,
                warnings=[warnings.get(i) for i in kept] if warnings else None,
            )
            for position, field in prepared.bad.items():
                index = prepared.order[position]
                bad.add(index)
                reason = f"`{field}` is not a JSON object"
                failures.append(Failure(kept[index], FailureKind.WRONG_TYPE, field, reason))
        stats.kept = len(kept) - len(bad)
        stats.quarantined = len(failures)
        stats.build_seconds = time.perf_counter() - started

        if prepared is not None:
            self._write_tables(prepared, top, now)
        if self._replay is not None:
            self._requarantine(raw, failures, now)
        elif failures:
            self._write_quarantine(raw, failures, top, now)

        self._seen.record(_seen_by_day(raw, kept, kept_keys, bad), top)
        stats.build_seconds = time.perf_counter() - started - stats.commit_seconds
        for observe in self.observers:
            observe(stats)

    def _check_contracts(
        self,
        raw: pa.Table,
        good: list[int],
        decoded: list[Message | None],
        failures: list[Failure],
        models: dict[int, int],
        warnings: dict[int, str],
    ) -> list[int]:
        """The rows of ``good`` that pass their contracts; the others are added to ``failures``.
        Fills ``models`` (row → contract MODEL above 1) and ``warnings`` (row → violation
        loaded under ``warn``).

        Before dedup: an invalid copy never hides a valid copy of the same message id that
        follows it in the batch, and it is never recorded as seen."""
        checking = time.perf_counter()
        all_sources = raw.column("source")
        if all_sources.null_count == 0 and pc.count_distinct(all_sources).as_py() == 1:
            sources: list[str] = [all_sources[0].as_py()] * len(good)
        else:
            every = all_sources.to_pylist()
            sources = [every[i] or "" for i in good]
        messages: list[Message] = []
        for i in good:
            message = decoded[i]
            assert message is not None  # _classify decoded every good row
            messages.append(message)
        checked = self._contracts.check(sources, messages)
        stats = self.stats
        stats.contract_seconds = time.perf_counter() - checking
        stats.contract_warnings = sum(checked.warned.values())
        stats.contract_warned = checked.warned
        if checked.warned:
            _log.warning("events loaded despite their contracts (warn)", by_contract=checked.warned)
        models.update((good[position], model) for position, model in checked.models.items())
        warnings.update((good[position], warning) for position, warning in checked.warnings.items())
        if not checked.quarantined:
            return good
        stats.contract_quarantined = len(checked.quarantined)
        out = set()
        for v in checked.quarantined:
            out.add(v.position)
            failures.append(Failure(good[v.position], v.kind, v.field, v.reason, v.contract, v.violations))
        return [index for position, index in enumerate(good) if position not in out]

    def _write_tables(self, prepared: Prepared, top: int, now: int) -> None:
        stats = self.stats
        tables = self._tables
        for group in prepared.groups.values():
            spec = group.spec
            if self._replayed_already(spec):
                continue
            built = build(prepared, group, self._after(spec), tables.kinds(spec), self._contracts.hints)
            if built is None:
                continue
            self._commit(spec, built.data, built.new_columns, top)
            stats.dropped_values += built.dropped
        identifies = prepared.groups.get(IDENTIFIES.identifier)
        if identifies is not None and not self._replayed_already(USERS):
            loaded_at = pa.scalar(now, ARROW_TIME).as_py()
            users = build_users(prepared, identifies, tables, loaded_at, self._contracts.hints)
            if users is not None:
                self._commit(USERS, users.data, users.new_columns, top, users.replace)
                stats.dropped_values += users.dropped
        if stats.dropped_values:
            _log.warning("values with no column left", count=stats.dropped_values)

    def _after(self, spec: TableSpec) -> int:
        """The raw sequence above which the table lacks rows (0 in a replay: all of them)."""
        return 0 if self._replay is not None else self._tables.seq(spec)

    def _replayed_already(self, spec: TableSpec) -> bool:
        """In a replay: whether this table already holds it (a crash after its commit)."""
        if self._replay is None:
            return False
        done = self._tables.property(spec, REPLAY_PROPERTY)
        return done is not None and done >= self._replay

    def _commit(
        self,
        spec: TableSpec,
        data: pa.Table,
        new_columns: list[Column],
        top: int,
        replace: BooleanExpression | None = None,
    ) -> None:
        """One table's commit, recording ``top`` (a replay records the table's sequence
        unchanged, and its own id)."""
        committing = time.perf_counter()
        if self._replay is None:
            self._tables.write(spec, data, new_columns, top, replace)
        else:
            seq = self._tables.seq(spec)
            properties = {REPLAY_PROPERTY: self._replay}
            self._tables.write(spec, data, new_columns, seq, replace, properties=properties)
        self.stats.commit_seconds += time.perf_counter() - committing
        self.stats.tables += 1

    def _write_quarantine(self, raw: pa.Table, failures: list[Failure], top: int, now: int) -> None:
        after = self._tables.seq(QUARANTINE_SPEC)
        seqs = raw.column("ingest_seq").to_pylist()
        failures = sorted((f for f in failures if seqs[f.index] > after), key=lambda f: f.index)
        if not failures:
            return
        self._commit(QUARANTINE_SPEC, quarantine_rows(raw, failures, now), self._quarantine_columns(), top)
        self._count_quarantined(raw, failures)

    def _requarantine(self, raw: pa.Table, failures: list[Failure], now: int) -> None:
        """A replay's last commit: its rows leave quarantine, those still failing come back."""
        if self._replayed_already(QUARANTINE_SPEC):
            return
        failures = sorted(failures, key=lambda f: f.index)
        replayed = pc.unique(raw.column("origin")).to_pylist()
        leaving: BooleanExpression = In("origin", replayed)  # type: ignore[call-arg, arg-type]
        self._commit(
            QUARANTINE_SPEC, quarantine_rows(raw, failures, now), self._quarantine_columns(), 0, leaving
        )
        self._count_quarantined(raw, failures)

    def _count_quarantined(self, raw: pa.Table, failures: list[Failure]) -> None:
        sources = raw.column("source").to_pylist()
        counts = self.stats.quarantine_counts
        for failure in failures:
            key = (sources[failure.index] or "", failure.kind, failure.contract or "")
            counts[key] = counts.get(key, 0) + 1

    def _quarantine_columns(self) -> list[Column]:
        """Columns of ``QUARANTINE_SPEC`` the table lacks (made before they existed)."""
        known = self._tables.kinds(QUARANTINE_SPEC)
        return [
            Column(name, Kind.STRING, pa.array([], pa.string()), doc)
            for name, _, doc in QUARANTINE_SPEC.columns
            if name not in known
        ]


def _seen_by_day(raw: pa.Table, kept: list[int], keys: list[int], bad: set[int]) -> dict[int, list[int]]:
    """The kept ids that made rows, by the day their copy was received."""
    days = pc.divide(raw.column("received_at").cast(pa.int64()), 86_400_000_000)
    if pc.min(days).as_py() == pc.max(days).as_py():
        day: int = pc.min(days).as_py()
        return {day: [key for index, key in enumerate(keys) if index not in bad] if bad else keys}
    received = raw.column("received_at").cast(pa.int64()).to_pylist()
    return group_by_day((key, received[kept[index]]) for index, key in enumerate(keys) if index not in bad)


def _classify(
    raw: pa.Table, messages: Sequence[Message | None] | None
) -> tuple[list[Failure], list[int], list[Message | None]]:
    """Rows to quarantine, rows of known message types (indices), and every row's message
    (decoded here when the caller had none)."""
    rejected = pc.or_(pc.is_valid(raw.column("rejection")), pc.equal(raw.column("stream"), REJECTED))
    unknown = pc.invert(pc.is_in(raw.column("stream"), value_set=_TYPES))
    all_good = messages is not None and not pc.any(pc.or_(rejected, unknown)).as_py()
    if all_good and messages is not None and not any(message is None for message in messages):
        return [], list(range(raw.num_rows)), list(messages)  # the usual batch
    streams = raw.column("stream").to_pylist()
    rejections = raw.column("rejection").to_pylist()
    decoded: list[Message | None] = list(messages) if messages is not None else [None] * raw.num_rows
    payloads: list[bytes] | None = None
    failures: list[Failure] = []
    good: list[int] = []
    for index, (stream, rejection) in enumerate(zip(streams, rejections, strict=True)):
        if rejection is not None or stream == REJECTED:
            failures.append(rejection_failure(index, rejection))
            continue
        if stream not in BY_TYPE:
            failures.append(
                Failure(index, FailureKind.UNKNOWN_TYPE, "type", f"unknown message type {stream!r}")
            )
            continue
        if decoded[index] is None:
            if payloads is None:
                payloads = raw.column("payload").to_pylist()
            result = decode(payloads[index])
            if isinstance(result, Problem):
                failures.append(Failure(index, result.kind, result.field, result.reason))
                continue
            decoded[index] = result
        good.append(index)
    return failures, good, decoded
