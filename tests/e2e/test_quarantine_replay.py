"""With the real services running: events break their contract and are quarantined; the
contract is fixed; ``insightloop quarantine replay`` is queued to the running cleaner, which
lands them; replaying again changes nothing."""

from __future__ import annotations

import base64
import fcntl
import http.client
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from e2e_support import read_table, wait_for

from insightloop.config import Config, load_config
from insightloop.lake.catalog import lake_root
from insightloop.processor.runner import CLEANER_LOCK
from insightloop.testing import Services

pytestmark = pytest.mark.slow

AUTH = "Basic " + base64.b64encode(b"demo-web-write-key:").decode()
REPORT = {
    "type": "object",
    "properties": {"report_id": {"type": "string"}, "rows": {"type": "integer", "minimum": 0}},
    "required": ["report_id"],
    "additionalProperties": False,
}


def write_contract(root: Path, version: str, body: dict[str, Any]) -> None:
    folder = root / "track" / "report_created"
    folder.mkdir(parents=True, exist_ok=True)
    header = {"vendor": "insightloop", "name": "report_created", "format": "jsonschema", "version": version}
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "self": header, **body}
    (folder / f"{version}.json").write_bytes(orjson.dumps(schema))


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    write_contract(tmp_path / "contracts", "1-0-0", REPORT)
    return tmp_path / "contracts"


@pytest.fixture
def running(tmp_path: Path, contracts: Path) -> Iterator[Services]:
    services = Services(tmp_path / "data", extra_env={"INSIGHTLOOP__CONTRACTS__DIR": str(contracts)})
    try:
        services.start_pipeline()
        yield services
    finally:
        services.stop_all()


def report(message_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "event": "Report Created",
        "userId": "u1",
        "properties": properties,
    }


def send(services: Services, *events: dict[str, Any]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", services.port, timeout=10)
    body = orjson.dumps({"batch": list(events)})
    connection.request("POST", "/v1/batch", body, {"Authorization": AUTH, "Content-Type": "application/json"})
    assert connection.getresponse().status == 200


def cleaner_holds_the_lock(config: Config) -> bool:
    with (lake_root(config) / CLEANER_LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def count(config: Config, identifier: str) -> int:
    table = read_table(config, identifier)
    return 0 if table is None else table.num_rows


def replay(services: Services, *options: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "insightloop"), "quarantine", "replay", *options]
    return subprocess.run(command, env=services.env, capture_output=True, text=True, timeout=180)


def test_a_replay_queued_to_the_running_cleaner_lands_the_fixed_events_once(
    running: Services, contracts: Path
) -> None:
    config = load_config(environ=running.env)
    send(running, report("ok", report_id="r1"), report("no-id-1", rows=1), report("no-id-2", rows=2))
    wait_for(lambda: count(config, "quarantine.sdk_events") == 2, 60, "two events in quarantine")
    assert count(config, "cleaned.report_created") == 1

    write_contract(contracts, "1-1-0", {**REPORT, "required": []})  # the fix: report_id optional
    running.stop("cleaner")
    running.start("cleaner")  # contracts load when the cleaner starts
    wait_for(lambda: cleaner_holds_the_lock(config), 60, "the cleaner to take the lake's cleaner lock")

    done = replay(running, "--kind", "contract_violation")
    assert done.returncode == 0, done.stderr + running.output("cleaner")
    assert "the running cleaner applies" in done.stderr  # it went through the queue
    assert "2 landed" in done.stdout
    assert count(config, "cleaned.report_created") == 3
    assert count(config, "quarantine.sdk_events") == 0

    again = replay(running, "--kind", "contract_violation")
    assert again.returncode == 0, again.stderr
    assert "nothing in quarantine" in again.stdout
    assert count(config, "cleaned.report_created") == 3
