"""Quarantine replay: quarantined events run again through today's rules and contracts.

``insightloop quarantine replay`` (with a ``Selection``) asks stage 2 to re-apply the raw
rows of the selected quarantined events (``CleanedStage.replay``): those that now pass land
in their cleaned tables and leave quarantine; those that still fail stay, once, with
today's reasons. Only stage 2's owner may commit to its tables, so:

- when no cleaner (nor an inline processor) runs, the command takes the cleaner lock and
  applies the replay itself;
- otherwise it leaves a request in ``<data_dir>/processor/cleaned/replays/pending`` that the
  running cleaner applies between two turns, and waits for its result in ``done``.

A request is applied in three steps, each safe to repeat after a crash:

1. **claim**: the selected rows' origins (one per raw row) are written to ``<id>.claim``
   (atomically, once): a re-run replays exactly these rows, never rows quarantined since;
2. **apply**: ``CleanedStage.replay`` under the request's id (each table records the id it
   holds, so a re-run skips the tables already done, ending with quarantine);
3. **done**: the result is written to ``done/<id>.json``, then the request is removed.

Replaying twice never makes two rows: a row that landed has left quarantine (so a second
selection does not find it) and its message id is recorded as seen (a copy is a duplicate);
a row that still fails is replaced in quarantine, not added. Rows the collector rejected
(over the size limits, not JSON …) are not replayed: they hold truncated bytes or broke
the wire rules; the producer must send them again. Their count is reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import BooleanExpression, In

from insightloop.config import Config
from insightloop.files import write_atomically
from insightloop.lake.raw_table import SDK_EVENTS
from insightloop.processor.cleaned.stage import REJECTED, CleanedStage, state_directory
from insightloop.processor.stage import DerivedStage
from insightloop.quarantine.selection import Selection

_log = structlog.get_logger(__name__)

QUARANTINE = "quarantine.sdk_events"


class ReplayResult(msgspec.Struct, frozen=True):
    """What one replay did, in events (quarantine rows)."""

    request: str
    #: Quarantined events the selection picked.
    selected: int
    #: Now in their cleaned tables, and out of quarantine.
    landed: int
    #: A copy had landed meanwhile (a corrected retry): out of quarantine, nothing added.
    duplicates: int
    #: Still failing: in quarantine once, with today's reasons.
    still_failing: int
    #: Rejected by the collector: not replayed, still in quarantine.
    not_replayable: int
    #: Their raw rows are gone (expired): not replayed, still in quarantine.
    missing_raw: int
    #: Still failing, by kind.
    failing_by_kind: dict[str, int] = msgspec.field(default_factory=dict)


class _Request(msgspec.Struct, frozen=True):
    id: str
    selection: Selection
    submitted_at: float


class _Claim(msgspec.Struct, frozen=True):
    origins: list[str]
    #: The raw sequences those rows came in (to prune raw's files).
    seqs: list[int]
    not_replayable: int


def new_request_id() -> str:
    """A sortable, unique request id (replays apply in this order)."""
    return f"{time.time_ns():020d}-{os.urandom(4).hex()}"


class ReplayQueue:
    """The requests folder of one lake's stage 2."""

    def __init__(self, config: Config) -> None:
        self.root = state_directory(config) / "replays"
        self.pending = self.root / "pending"
        self.done = self.root / "done"

    def submit(self, selection: Selection) -> str:
        """Leave a request for the running stage 2; returns its id."""
        request = _Request(new_request_id(), selection, time.time())
        self.pending.mkdir(parents=True, exist_ok=True)
        write_atomically(self.pending / f"{request.id}.json", msgspec.json.encode(request))
        return request.id

    def result(self, request: str) -> ReplayResult | None:
        """The result of a request once applied (None while pending)."""
        path = self.done / f"{request}.json"
        if not path.exists():
            return None
        return msgspec.json.decode(path.read_bytes(), type=ReplayResult)

    def waiting(self) -> list[str]:
        """Pending request ids, oldest first."""
        if not self.pending.is_dir():
            return []
        return sorted(path.stem for path in self.pending.glob("*.json"))

    def apply_pending(self, stage: CleanedStage, catalog: Catalog) -> list[ReplayResult]:
        """Apply every pending request, oldest first (stage 2's owner calls this)."""
        results = []
        for request_id in self.waiting():
            path = self.pending / f"{request_id}.json"
            try:
                request = msgspec.json.decode(path.read_bytes(), type=_Request)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                _log.error("unreadable replay request set aside", path=str(path), error=str(exc))
                path.rename(path.with_suffix(".bad"))
                continue
            results.append(self.apply(stage, catalog, request.id, request.selection))
        return results

    def apply(
        self, stage: CleanedStage, catalog: Catalog, request: str, selection: Selection
    ) -> ReplayResult:
        """Claim, apply and record one request (each step safe to repeat after a crash)."""
        claim_path = self.pending / f"{request}.claim"
        if claim_path.exists():
            claim = msgspec.json.decode(claim_path.read_bytes(), type=_Claim)
        else:
            claim = claim_rows(catalog, selection)
            self.pending.mkdir(parents=True, exist_ok=True)
            write_atomically(claim_path, msgspec.json.encode(claim))
        raw = raw_rows(catalog, claim.origins, claim.seqs)
        stats = stage.replay(raw, request)
        failing: dict[str, int] = {}
        for (_, kind, _), count in stats.quarantine_counts.items():
            failing[kind] = failing.get(kind, 0) + count
        result = ReplayResult(
            request=request,
            selected=len(claim.origins) + claim.not_replayable,
            landed=stats.kept,
            duplicates=stats.duplicates,
            still_failing=stats.quarantined,
            not_replayable=claim.not_replayable,
            missing_raw=len(claim.origins) - raw.num_rows,
            failing_by_kind=failing,
        )
        self.done.mkdir(parents=True, exist_ok=True)
        write_atomically(self.done / f"{request}.json", msgspec.json.encode(result))
        claim_path.unlink(missing_ok=True)
        (self.pending / f"{request}.json").unlink(missing_ok=True)
        _log.info("quarantine replay applied", **msgspec.structs.asdict(result))
        return result

    def wait(
        self, request: str, timeout: float, poll: float = 0.2, tick: Callable[[], None] | None = None
    ) -> ReplayResult | None:
        """The request's result once the running stage 2 applied it (None after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.result(request)
            if result is not None or time.monotonic() >= deadline:
                return result
            if tick is not None:
                tick()
            time.sleep(poll)


def replay_applier(config: Config, stage: DerivedStage, catalog: Catalog) -> Callable[[], int] | None:
    """What stage 2's owner calls after each turn: applies the pending requests and returns how
    many events they replayed (cheap when none waits: one directory listing). None for a
    stage that cannot replay."""
    if not isinstance(stage, CleanedStage):
        return None
    queue = ReplayQueue(config)

    def apply() -> int:
        if not queue.waiting():
            return 0
        return sum(result.selected for result in queue.apply_pending(stage, catalog))

    return apply


def claim_rows(catalog: Catalog, selection: Selection) -> _Claim:
    """The origins of the quarantined rows ``selection`` picks (oldest first, at most
    ``selection.limit``), and how many of them the collector rejected (not replayable)."""
    try:
        table = catalog.load_table(QUARANTINE)
    except NoSuchTableError:
        return _Claim([], [], 0)
    rows = table.scan(
        row_filter=selection.row_filter(), selected_fields=("origin", "stream", "ingest_seq")
    ).to_arrow()
    if rows.num_rows == 0:
        return _Claim([], [], 0)
    rows = rows.sort_by([("ingest_seq", "ascending"), ("origin", "ascending")])
    if selection.limit is not None:
        rows = rows.slice(0, selection.limit)
    rejected = pc.fill_null(pc.equal(rows.column("stream"), REJECTED), False)
    replayable = rows.filter(pc.invert(rejected))
    seqs = pc.unique(replayable.column("ingest_seq")).to_pylist()
    return _Claim(replayable.column("origin").to_pylist(), seqs, rows.num_rows - replayable.num_rows)


def raw_rows(catalog: Catalog, origins: list[str], seqs: list[int]) -> pa.Table:
    """The raw rows with these origins (which came in raw sequences ``seqs``), in raw order:
    the ones raw still holds."""
    raw = catalog.load_table(SDK_EVENTS)
    if not origins:
        return raw.schema().as_arrow().empty_table()
    # Origins (``log:<shard>:<offset>:<index>``) are unique per raw row; raw's files carry
    # ingest_seq statistics, so narrowing by the rows' sequences first prunes files.
    in_seqs: BooleanExpression = In("ingest_seq", seqs)  # type: ignore[call-arg, arg-type]
    rows = raw.scan(row_filter=in_seqs).to_arrow()
    rows = rows.filter(pc.is_in(rows.column("origin"), value_set=pa.array(origins, pa.string())))
    if rows.num_rows:
        rows = rows.sort_by([("ingest_seq", "ascending"), ("origin", "ascending")])
    return rows
