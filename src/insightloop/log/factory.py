"""Pick the log implementation named by the configuration: the one place that decides."""

from __future__ import annotations

from insightloop.config import Config
from insightloop.errors import ConfigError
from insightloop.log import Log
from insightloop.log.local import LocalLog


def open_log(config: Config) -> Log:
    """The log ``config.log.kind`` names; ``local`` keeps its files under ``<data_dir>/log``."""
    settings = config.log
    if settings.kind == "local":
        return LocalLog(
            config.path("log"),
            shards=settings.shards,
            segment_bytes=settings.segment_bytes,
            fsync=settings.fsync,
            retention_hours=settings.retention_hours,
        )
    raise ConfigError(f"log.kind {settings.kind!r} is unknown (expected 'local')")


def open_cdc_log(config: Config) -> Log:
    """The CDC log: one shard (changes stay in commit order), under ``<data_dir>/log-cdc``
    for ``local``. The CDC reader is its only writer."""
    settings = config.log
    if settings.kind == "local":
        return LocalLog(
            config.path("log-cdc"),
            shards=1,
            segment_bytes=settings.segment_bytes,
            fsync=settings.fsync,
            retention_hours=settings.retention_hours,
        )
    raise ConfigError(f"log.kind {settings.kind!r} is unknown (expected 'local')")
