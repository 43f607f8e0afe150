"""An S3 landing zone, against moto's S3 server (a real HTTP S3 API on 127.0.0.1): the landing
zone ``s3://<bucket>/landing`` is listed, hashed and read through the same ``S3FileSystem``
code that runs against AWS, only with ``exports.s3_endpoint`` pointing at the server.
Credentials come from the AWS environment variables, as in production."""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import boto3
import pytest
from exports_kit import ENTITY, SOURCE, Lake, counts, csv_text, make_config, row
from moto.server import ThreadedMotoServer
from typer.testing import CliRunner

from insightloop.cli.main import app
from insightloop.config import Config, load_config
from insightloop.errors import ConfigError
from insightloop.exports.generate import daily_exports
from insightloop.exports.landing import Landing
from insightloop.exports.service import run
from insightloop.exports.status import files_status

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
REGION = "us-east-1"
_buckets = count(1)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, for this module's tests."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Bucket:
    """A fresh bucket of the server and the landing zone ``s3://<name>/landing`` in it."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.name = f"exports-landing-{next(_buckets)}"
        self.client: Any = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        self.client.create_bucket(Bucket=self.name)
        self.landing = f"s3://{self.name}/landing"

    def put(self, name: str, data: bytes | str, *, source: str = SOURCE, entity: str = ENTITY) -> str:
        """Upload ``<landing>/<source>/<entity>/<name>``; returns its s3:// URI."""
        key = f"landing/{source}/{entity}/{name}"
        self.client.put_object(
            Bucket=self.name, Key=key, Body=data.encode() if isinstance(data, str) else data
        )
        return f"s3://{self.name}/{key}"

    def config(self, tmp_path: Path, **exports: Any) -> Config:
        """The export tests' config (``exports_kit``) with this landing zone."""
        exports = {"landing": self.landing, "s3_endpoint": self.endpoint, "s3_region": REGION, **exports}
        return make_config(tmp_path, **exports)


@pytest.fixture
def bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return Bucket(endpoint)


def test_generated_exports_on_s3_load_exactly_once(bucket: Bucket, tmp_path: Path) -> None:
    days = daily_exports(tmp_path / "generated", days=2, contacts=400, mess=0.005)  # day 2 gzipped
    for day in days:
        bucket.put(day.path.name, day.path.read_bytes())
    config = load_config(
        environ={
            "INSIGHTLOOP_DATA_DIR": str(tmp_path / "data"),
            "INSIGHTLOOP__CONTRACTS__DIR": str(REPO_CONTRACTS),
            "INSIGHTLOOP__EXPORTS__LANDING": bucket.landing,
            "INSIGHTLOOP__EXPORTS__S3_ENDPOINT": bucket.endpoint,
            "INSIGHTLOOP__EXPORTS__S3_REGION": REGION,
            "INSIGHTLOOP__EXPORTS__MAX_BAD_FRACTION": "0.05",
            "INSIGHTLOOP__EXPORTS__METRICS_PORT": "0",
        }
    )
    found = Landing.from_config(config).discover()
    assert [f.uri for f in found] == [
        f"{bucket.landing}/hubspot/contacts/contacts_2026-11-23.csv",
        f"{bucket.landing}/hubspot/contacts/contacts_2026-11-24.csv.gz",
    ]
    assert [f.local for f in found] == [False, False]
    lake = Lake(config)
    assert [lake.loader.load(file).status for file in found] == ["loaded", "loaded"]
    good, bad = sum(d.rows - d.bad for d in days), sum(d.bad for d in days)
    assert bad > 0
    streams = lake.column("raw.export_rows", "stream")
    assert (streams.count("export"), streams.count("rejected")) == (good, bad)
    assert len(lake.column("quarantine.export_rows", "event_id")) == bad
    keys = sorted(set().union(*(d.keys for d in days)))
    assert sorted(lake.column("cleaned.crm_contacts", "contact_id")) == keys
    assert [r.uri for r in lake.loader.manifest.records()] == [f.uri for f in found]

    # The same files again, listed afresh: nothing loads, nothing is committed.
    raw_snapshots = len(lake.catalog.load_table("raw.export_rows").metadata.snapshots)
    again = [lake.loader.load(file) for file in Landing.from_config(config).discover()]
    assert [o.status for o in again] == ["unchanged", "unchanged"]
    assert len(lake.catalog.load_table("raw.export_rows").metadata.snapshots) == raw_snapshots
    streams = lake.column("raw.export_rows", "stream")
    assert (streams.count("export"), streams.count("rejected")) == (good, bad)
    assert sorted(lake.column("cleaned.crm_contacts", "contact_id")) == keys


def test_a_gzip_file_on_s3_loads(bucket: Bucket, tmp_path: Path) -> None:
    rows = [row(1), row(2, score=""), row(3, score="x")]  # key 3's score is no integer: bad row
    uri = bucket.put("contacts_2026-11-25.csv.gz", gzip.compress(csv_text(rows).encode()))
    config = bucket.config(tmp_path)
    (file,) = Landing.from_config(config).discover()
    assert (file.uri, file.compression, file.period()) == (uri, "gzip", "2026-11-25")
    lake = Lake(config)
    outcome = lake.loader.load(file)
    assert (outcome.status, outcome.rows, outcome.bad_rows) == ("loaded", 2, 1)
    assert lake.counts() == counts(2, 1, 2, 1)
    assert sorted(lake.cleaned()) == ["1", "2"]


def test_a_truncated_gzip_on_s3_is_rejected_with_nothing_committed(bucket: Bucket, tmp_path: Path) -> None:
    config = bucket.config(tmp_path, batch_rows=1000)
    whole = gzip.compress(csv_text(row(i) for i in range(20_000)).encode())
    bucket.put("contacts_2026-11-25.csv.gz", whole[: len(whole) * 2 // 3])
    lake = Lake(config)
    (file,) = Landing.from_config(config).discover()
    outcome = lake.loader.load(file)
    assert outcome.status == "rejected"
    assert outcome.reason is not None and "cannot be read" in outcome.reason
    assert lake.counts() == counts(0, 0, 0, 0)
    assert lake.catalog.load_table("raw.export_rows").metadata.snapshots == []
    assert not list((tmp_path / "data" / "lake" / "warehouse" / "raw").rglob("*.parquet"))
    assert [(s.uri, s.status) for s in files_status(config)] == [(file.uri, "rejected")]

    bucket.put("contacts_2026-11-25.csv.gz", whole)  # uploaded again, whole this time
    (file,) = Landing.from_config(config).discover()
    assert lake.loader.load(file).status == "loaded"
    assert lake.counts() == counts(20_000, 0, 20_000, 0)


def test_an_upload_in_progress_on_s3_is_skipped(bucket: Bucket, tmp_path: Path) -> None:
    bucket.put("contacts_2026-11-24.csv", csv_text([row(1), row(2)]))
    bucket.put("contacts_2026-11-25.csv.part", csv_text([row(3)]))
    bucket.put(".contacts_2026-11-25.csv", csv_text([row(4)]))
    bucket.put("_contacts_2026-11-25.csv.tmp", csv_text([row(5)]))
    bucket.put("notes.md", "not an export")
    bucket.put("contacts_2026-11-26.csv", csv_text([row(6)]), entity="too/deep")
    config = bucket.config(tmp_path)
    lake = Lake(config)
    found = Landing.from_config(config).discover()
    assert [f.name for f in found] == ["contacts_2026-11-24.csv"]
    assert [lake.loader.load(file).status for file in found] == ["loaded"]
    assert lake.counts() == counts(2, 0, 2, 0)

    # The upload completes: the uploader puts the file under its final name.
    bucket.put("contacts_2026-11-25.csv", csv_text([row(3)]))
    found = Landing.from_config(config).discover()
    assert [f.name for f in found] == ["contacts_2026-11-24.csv", "contacts_2026-11-25.csv"]
    assert [lake.loader.load(file).status for file in found] == ["unchanged", "loaded"]
    assert lake.counts() == counts(3, 0, 3, 0)
    assert sorted(lake.cleaned()) == ["1", "2", "3"]


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_file_loader_polls_an_s3_landing_zone(bucket: Bucket, tmp_path: Path) -> None:
    config = bucket.config(tmp_path, poll_seconds=0.1)
    bucket.put("contacts_2026-11-24.csv", csv_text([row(1), row(2)]))
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(config, stop))
    thread.start()
    try:
        wait_for(lambda: [s.status for s in files_status(config)] == ["loaded"])
        bucket.put("contacts_2026-11-25.csv.gz", gzip.compress(csv_text([row(3)]).encode()))
        wait_for(lambda: sorted(s.status for s in files_status(config)) == ["loaded", "loaded"])
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert sorted(s.uri for s in files_status(config)) == [
        f"{bucket.landing}/hubspot/contacts/contacts_2026-11-24.csv",
        f"{bucket.landing}/hubspot/contacts/contacts_2026-11-25.csv.gz",
    ]
    assert Lake(config).counts() == counts(3, 0, 3, 0)


def invoke(config: Config, *args: str) -> tuple[int, str]:
    env = {
        "INSIGHTLOOP_DATA_DIR": config.data_dir,
        "INSIGHTLOOP__CONTRACTS__DIR": config.contracts.dir,
        "INSIGHTLOOP__EXPORTS__S3_ENDPOINT": config.exports.s3_endpoint,
        "INSIGHTLOOP__EXPORTS__S3_REGION": config.exports.s3_region,
    }
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_load_command_reads_an_s3_file_or_prefix(bucket: Bucket, tmp_path: Path) -> None:
    config = bucket.config(tmp_path, landing="")
    first = bucket.put("contacts_2026-11-24.csv", csv_text([row(1), row(2)]))
    second = bucket.put("contacts_2026-11-25.csv.gz", gzip.compress(csv_text([row(3)]).encode()))
    bucket.put("contacts_2026-11-26.csv.part", csv_text([row(9)]))

    code, output = invoke(config, "load", first)
    assert code == 0 and f"loaded     {first}: 2 rows, 0 bad" in output
    assert Lake(config).counts() == counts(2, 0, 2, 0)

    code, output = invoke(config, "load", bucket.landing + "/")  # source and entity from the keys
    assert code == 0 and f"unchanged  {first}" in output and f"loaded     {second}: 1 rows" in output
    assert ".part" not in output
    assert {(s.source, s.entity) for s in files_status(config)} == {(SOURCE, ENTITY)}
    assert Lake(config).counts() == counts(3, 0, 3, 0)

    code, output = invoke(config, "load", f"s3://{bucket.name}/nothing/here.csv")
    assert code == 2 and "does not exist" in output


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("S3_ENDPOINT", "127.0.0.1:9000", "exports.s3_endpoint '127.0.0.1:9000' is not an http://"),
        ("S3_ENDPOINT", "ftp://minio:9000", "is not an http:// or https:// URL of a host"),
        ("S3_ENDPOINT", "http://minio:99999", "is not an http:// or https:// URL of a host"),
        ("S3_ENDPOINT", "http://key:secret@minio:9000", "give only scheme, host and port"),
        ("S3_ENDPOINT", "https://minio:9000/bucket", "give only scheme, host and port"),
        ("S3_REGION", "EU West 1", "exports.s3_region 'EU West 1' is not a region name"),
    ],
)
def test_bad_s3_settings_fail_loudly(tmp_path: Path, key: str, value: str, message: str) -> None:
    environ = {"INSIGHTLOOP_DATA_DIR": str(tmp_path), f"INSIGHTLOOP__EXPORTS__{key}": value}
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(environ=environ)


def test_good_s3_settings_load(tmp_path: Path) -> None:
    environ = {
        "INSIGHTLOOP_DATA_DIR": str(tmp_path),
        "INSIGHTLOOP__EXPORTS__S3_ENDPOINT": "https://minio.internal:9000",
        "INSIGHTLOOP__EXPORTS__S3_REGION": "eu-west-1",
    }
    exports = load_config(environ=environ).exports
    assert (exports.s3_endpoint, exports.s3_region) == ("https://minio.internal:9000", "eu-west-1")
    defaults = load_config(environ={"INSIGHTLOOP_DATA_DIR": str(tmp_path)}).exports
    assert (defaults.s3_endpoint, defaults.s3_region) == ("", "")


def test_endpoint_options_in_the_uri_are_refused_when_the_config_sets_them(
    bucket: Bucket, tmp_path: Path
) -> None:
    config = bucket.config(tmp_path, landing=f"{bucket.landing}?scheme=http")
    with pytest.raises(ConfigError, match="not as URI options"):
        Landing.from_config(config)
