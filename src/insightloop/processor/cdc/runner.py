"""The CDC processor: the stream processor's loop (``processor.runner.Processor``) over the
CDC log, stage 1 into ``raw.cdc_changes`` and stage 2 (``stage.CdcStage``) inline.

Same guarantees as the SDK processor: log positions and the raw sequence are recorded in
raw's commits, stage 2 catches up from raw at start-up and after a failure, transient
failures are retried with back-off (``retry.run_turns``), SIGTERM finishes the batch in
hand. One CDC processor per lake (``cdc-processor.lock``). Between batches it compacts and
expires the snapshots of its own tables only (``lake.ownership``): the SDK processor and
cleaner commit to other tables of the same namespaces, and maintaining theirs would conflict.
"""

from __future__ import annotations

import threading

import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.typedef import Identifier

from insightloop.config import Config
from insightloop.lake.catalog import lake_root
from insightloop.lake.maintenance import SnapshotRetention
from insightloop.lake.ownership import CDC_PROCESSOR, writer, written_by
from insightloop.log import Log
from insightloop.processor.cdc.metrics import CdcMetrics
from insightloop.processor.cdc.raw_rows import CDC_CHANGES, CdcRawRows
from insightloop.processor.cdc.stage import CdcStage, state_directory
from insightloop.processor.compaction import Compactor
from insightloop.processor.housekeeping import Housekeeping
from insightloop.processor.intake import BatchLimits
from insightloop.processor.metrics import serve as serve_metrics
from insightloop.processor.runner import Processor, exclusive, open_catalog_retrying, stop_on_signals

_log = structlog.get_logger(__name__)

#: A CDC micro-batch closes after at most this long (``processor.max_batch_seconds`` if
#: shorter). Stage 2 costs about a second per batch whatever its size (two commits per
#: source table), so under load batches grow by themselves (the changes that arrive while
#: one is applied); waiting longer to fill them only adds replication lag (a 1 s window:
#: p95 6 s at 5,000 changes/s end to end, ``benchmarks.bench_cdc_e2e``).
MAX_BATCH_SECONDS = 0.2

#: The name of the CDC processor's (advisory) checkpoints in the CDC log.
CONSUMER = "cdc-processor"
LOCK = "cdc-processor.lock"


def build_cdc_processor(
    config: Config, log: Log, catalog: Catalog, metrics: CdcMetrics | None = None
) -> Processor:
    metrics = metrics or CdcMetrics()
    settings = config.processor
    stage = CdcStage(catalog, state_directory(config))
    stage.observers.append(metrics.observe)
    owns = written_by(CDC_PROCESSOR)
    return Processor(
        log,
        catalog,
        stage,
        BatchLimits(settings.max_batch_events, min(settings.max_batch_seconds, MAX_BATCH_SECONDS)),
        housekeeping=Housekeeping(
            catalog,
            Compactor(catalog, settings.compact_min_files, owns=owns, metrics=metrics),
            SnapshotRetention.from_config(config.lake),
            metrics=metrics,
            owns=owns,
        ),
        metrics=metrics,
        raw_table=CDC_CHANGES,
        rows=CdcRawRows,
        consumer=CONSUMER,
        name="cdc-processor",
    )


def is_cdc_table(identifier: Identifier | str) -> bool:
    """Whether the CDC processor writes (and so maintains) this lake table."""
    return writer(identifier) == CDC_PROCESSOR


def run(config: Config, stop: threading.Event | None = None) -> None:
    """Run the CDC processor of ``config`` until ``stop`` is set (or SIGTERM/SIGINT when no
    ``stop`` is given); the micro-batch in hand is committed first."""
    from insightloop.log.factory import open_cdc_log

    if stop is None:
        stop = threading.Event()
        stop_on_signals(stop)
    lock = lake_root(config) / LOCK
    with exclusive(lock, f"another CDC processor holds {lock}: only one may run per lake"):
        log = open_cdc_log(config)
        try:
            catalog = open_catalog_retrying(config, stop)
            if catalog is not None:
                metrics = CdcMetrics()
                serve_metrics(
                    metrics, config.collector.host, config.cdc.processor_metrics_port, "cdc-processor"
                )
                build_cdc_processor(config, log, catalog, metrics).run(stop)
        finally:
            log.close()
