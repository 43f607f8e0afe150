from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from insightloop.config import load_config
from insightloop.errors import ConfigError
from insightloop.log.factory import open_log


def test_the_local_log_lives_under_the_data_directory(tmp_path: Path) -> None:
    config = load_config(environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path), "INSIGHTLOOP__LOG__SHARDS": "3"})

    log = open_log(config)
    try:
        log.append("shard-2", [b"hello"])
        assert log.shards() == ["shard-0", "shard-1", "shard-2"]
        assert [r.data for r in log.read("shard-2", None)] == [b"hello"]
    finally:
        log.close()
    assert [p.name for p in (tmp_path / "log" / "shard-2").glob("*.log")] == ["00000000000000000000.log"]


def test_an_unknown_log_kind_is_a_config_error(tmp_path: Path) -> None:
    config = load_config(environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path)})
    config = msgspec.structs.replace(config, log=msgspec.structs.replace(config.log, kind="carrier-pigeon"))

    with pytest.raises(ConfigError, match="carrier-pigeon"):
        open_log(config)
