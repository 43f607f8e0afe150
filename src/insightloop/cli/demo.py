"""``insightloop demo``: the pipeline under realistic traffic, and what came out of it.

Uses the configured data directory (``.insightloop`` by default), cleared at the start of
each demo; a directory holding data the demo did not create is refused, never cleared.
Runs the same supervised children as ``insightloop up``, sends traffic at ``--rate`` for
``--duration`` (or until Ctrl-C), waits for the pipeline to catch up, then prints the report.

With ``cdc.enabled`` it also starts the demo application database (``demo_cdc``), changes it
at ``--cdc-rate`` while the traffic runs, waits for the lake to reach the source's last LSN
and reports the source's rows against the live rows of ``cleaned.app_<table>``.

With ``exports.enabled`` it also drops daily CRM exports into the landing zone while the
traffic runs (the file loader polling every second), waits until each has a final status,
and checks ``raw.export_rows``, ``quarantine.export_rows`` and ``cleaned.crm_contacts``
against the files (``insightloop.demo.exports``, with ``export_drops`` and ``export_checks``).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shutil
import signal
import threading
import time
from collections import deque
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import IO

from rich.console import Console
from rich.live import Live

from insightloop.cli.demo_cdc import CdcSide
from insightloop.cli.demo_view import (
    BROKEN,
    DRIFT,
    DemoView,
    render_cdc_summary,
    render_export_summary,
    render_summary,
)
from insightloop.cli.services import SERVICES, pipeline_services, running_pid
from insightloop.cli.supervisor import Policy, Supervisor
from insightloop.cli.up import collector_url, port_in_use, service_children
from insightloop.config import Config
from insightloop.demo.driver import TrafficRun
from insightloop.demo.exports import ExportSide
from insightloop.demo.report import LakeProbe, LatencyTracker, summarize
from insightloop.demo.traffic import DEMO_SHARES, Traffic
from insightloop.lake.raw_table import SDK_EVENTS

#: Marks a data directory as the demo's own: only such a directory is ever cleared.
DEMO_MARKER = "demo-run.json"
HEALTH_TIMEOUT = 60.0
DRAIN_TIMEOUT = 90.0
PROBE_EVERY = 1.0
#: Schema drift starts this far into the traffic (a share of ``--duration``; else seconds).
DRIFT_SHARE = 0.4
DRIFT_AFTER_SECONDS = 30.0
#: Changes per second the workload makes in the application database: light on 2 cores.
CDC_RATE = 200.0
APP_QUERY = "SELECT status, count(*) FROM cleaned.app_accounts WHERE NOT _deleted GROUP BY ALL"


class DemoError(Exception):
    """The demo cannot start; the message says why and what to do."""


def prepare_data_dir(config: Config) -> Path:
    path = Path(config.data_dir)
    if path.exists() and any(path.iterdir()):
        if not (path / DEMO_MARKER).is_file():
            raise DemoError(
                f"data dir {path} holds data the demo did not create; run `make clean`, or point "
                "INSIGHTLOOP_DATA_DIR at another directory for the demo"
            )
        for name in SERVICES:
            pid = running_pid(config, name)
            if pid is not None:
                raise DemoError(f"a {name} of an earlier run is still running (pid {pid}); stop it first")
        _stop_application_database(config)
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / DEMO_MARKER).write_text(json.dumps({"started_at": time.time()}) + "\n")
    return path


def _stop_application_database(config: Config) -> None:
    """An earlier demo's embedded database (left running by a killed demo) lives in the
    directory about to be cleared: stop it first."""
    from insightloop.cdc.appdb.server import appdb_dir, running_port, stop

    if running_port(appdb_dir(config)) is not None:
        stop(appdb_dir(config))


def write_keys(config: Config) -> tuple[str, str, str, str]:
    """(web source, its key, mobile source, its key): the mobile traffic uses another source."""
    sources = [(name, src.write_keys[0]) for name, src in config.collector.sources.items() if src.write_keys]
    if not sources:
        raise DemoError("collector.sources names no write keys: the demo needs at least one")
    web = next((s for s in sources if s[0] == "web"), sources[0])
    others = [s for s in sources if s != web]
    mobile_words = ("ios", "android", "mobile", "app")
    mobile = next((s for s in others if any(w in s[0] for w in mobile_words)), others[0] if others else web)
    return web[0], web[1], mobile[0], mobile[1]


def healthy(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=1.0)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


class _Logs:
    """Children's output to ``<data_dir>/logs/<name>.log``; supervisor lines also kept for display."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._files: dict[str, IO[str]] = {}
        self._lock = threading.Lock()
        self.recent: deque[str] = deque(maxlen=4)

    def __call__(self, name: str, line: str) -> None:
        with self._lock:
            file = self._files.get(name)
            if file is None:
                file = self._files[name] = (self.directory / f"{name}.log").open("a", encoding="utf-8")
            file.write(line + "\n")
            file.flush()
            if name == "supervisor" and not line.startswith(("started", "stopping", "stopped")):
                self.recent.append(line)

    def close(self) -> None:
        with self._lock:
            for file in self._files.values():
                file.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(
    config: Config,
    config_path: Path | None,
    duration: float | None,
    rate: float,
    seed: int,
    cdc_rate: float = CDC_RATE,
) -> int:
    console = Console()
    try:
        with ExitStack() as stack:
            return _run(console, stack, config, config_path, duration, rate, seed, cdc_rate)
    except DemoError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 1


def _run(
    console: Console,
    stack: ExitStack,
    config: Config,
    config_path: Path | None,
    duration: float | None,
    rate: float,
    seed: int,
    cdc_rate: float,
) -> int:
    """The demo; ``stack`` holds the application database until the services have stopped."""
    url = collector_url(config)
    if port_in_use(config.collector.host, config.collector.port):
        raise DemoError(f"{url} is already in use (another collector running?)")
    web_source, web_key, mobile_source, mobile_key = write_keys(config)
    data_dir = prepare_data_dir(config)
    logs = _Logs(data_dir / "logs")
    console.print(f"[bold]InsightLoop demo[/]  data dir: {data_dir} (cleared at the start of every demo)")
    console.print(f"service logs: {logs.directory}/", highlight=False)
    cdc = CdcSide(config, cdc_rate, seed)
    with console.status("starting the application database (the CDC source) …"):
        cdc.start_source(stack)
    exports = ExportSide(config, duration, seed)
    with console.status("writing the demo's CRM export files …"):
        exports.prepare()
    env = exports.env({**os.environ, "INSIGHTLOOP_DATA_DIR": str(data_dir)})
    children = service_children(config_path, env, names=pipeline_services(cdc.services_config()))
    supervisor = Supervisor(children, logs, Policy(max_restarts=5))
    stop_services = threading.Event()
    outcome: list[int] = []
    services = threading.Thread(
        target=lambda: outcome.append(supervisor.run(stop_services)), name="demo-supervisor", daemon=True
    )
    # Ctrl-C and SIGTERM alike: stop sending, let the pipeline catch up (again: skip that), report.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    services.start()
    traffic: TrafficRun | None = None
    try:
        with console.status("starting the services …"):
            deadline = time.monotonic() + HEALTH_TIMEOUT
            while not healthy(url):
                if not services.is_alive() or time.monotonic() > deadline:
                    raise DemoError(
                        f"the collector did not come up at {url}; see {logs.directory}/collector.log"
                    )
                time.sleep(0.3)
        console.print(
            f"collector: [bold]{url}[/]  (Segment HTTP API: /v1/batch, /v1/track, …)", highlight=False
        )
        console.print(
            f"write keys: {web_source} = [bold]{web_key}[/], {mobile_source} = [bold]{mobile_key}[/]"
        )
        console.print(
            f"point any Segment SDK at it: analytics.host = {url!r}; analytics.write_key = {web_key!r}",
            highlight=False,
        )
        _print_cdc_source(console, cdc, cdc_rate)
        _print_export_source(console, exports)

        after = duration * DRIFT_SHARE if duration is not None else DRIFT_AFTER_SECONDS
        drift_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=after)
        generator = Traffic(web_key, mobile_key, seed=seed, shares=DEMO_SHARES, drift_at=drift_at)
        traffic = TrafficRun(generator, url, rate, duration)
        probe = LakeProbe(config)
        latency = LatencyTracker(probe)
        view = DemoView(traffic, supervisor, logs.recent, duration, cdc=cdc, exports=exports)
        skipped = False
        traffic.start()
        started = time.monotonic()
        cdc.start_workload(duration, after)
        with Live(view.render({}, latency), console=console, refresh_per_second=4, transient=False) as live:
            rows: dict[str, int] = {}
            try:
                while traffic.running and not outcome:
                    rows = _probe(traffic, probe, latency, rows)
                    cdc.probe(time.monotonic())
                    exports.drop_due(time.monotonic() - started)
                    live.update(view.render(rows, latency))
                    time.sleep(PROBE_EVERY)
            except KeyboardInterrupt:
                pass  # stop sending, but still let the pipeline catch up
            traffic.stop()
            view.phase = "stopping the traffic and the workload"
            live.update(view.render(rows, latency))
            traffic.join()
            cdc.stop_workload()
            exports.drop_all()
            view.phase = "waiting for the pipeline to catch up (Ctrl-C skips)"
            try:
                deadline = time.monotonic() + DRAIN_TIMEOUT
                while not outcome and time.monotonic() < deadline:
                    rows = _probe(traffic, probe, latency, rows)
                    live.update(view.render(rows, latency))
                    landed = rows.get(SDK_EVENTS, 0) >= traffic.stats.events_accepted
                    sdk_done = landed and not latency.pending
                    if sdk_done and cdc.caught_up() and exports.done():
                        break
                    time.sleep(PROBE_EVERY)
            except KeyboardInterrupt:
                skipped = True
            view.phase = "done"
            live.update(view.render(rows, latency))
        if skipped:
            console.print("\nnot waiting for the pipeline: the report shows what had landed so far")
        with traffic.lock:
            probes = {DRIFT: set(traffic.stats.drift_ids), BROKEN: set(traffic.stats.broken_ids)}
        summary = summarize(config, probes)
        render_summary(console, traffic.stats, summary, latency, PROBE_EVERY, drift_at)
        render_cdc_summary(console, cdc.outcome())
        render_export_summary(console, exports.summary())
        console.print(
            "\nexplore it: [bold]insightloop status[/], "
            '[bold]insightloop query "SELECT count(*) FROM cleaned.tracks"[/]'
            + (f", [bold]insightloop query {APP_QUERY!r}[/]" if cdc.enabled else "")
        )
    finally:
        if traffic is not None:
            traffic.stop()
        stop_services.set()
        with console.status("stopping the services …"):
            services.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logs.close()
    if outcome and outcome[0] != 0:
        console.print(f"[red]the services failed (exit code {outcome[0]}); see {logs.directory}/[/]")
        return 1
    return 0 if traffic is not None and traffic.stats.requests_ok else 1


def _print_cdc_source(console: Console, cdc: CdcSide, cdc_rate: float) -> None:
    if not cdc.enabled:
        console.print(f"change data capture: [yellow]{cdc.off}[/]\n", highlight=False)
    elif cdc.embedded:
        console.print(
            f"application database (the CDC source): [bold]{cdc.dsn}[/]\n"
            f"  the workload changes it at {cdc_rate:,.0f} changes/s, its schema part-way; "
            "the CDC reader and processor turn it into cleaned.app_*\n",
            highlight=False,
        )
    else:
        console.print(
            "application database (the CDC source): cdc.dsn; captured as it is, the demo does not "
            "write to it\n",
            highlight=False,
        )


def _print_export_source(console: Console, exports: ExportSide) -> None:
    if exports.run is None:
        console.print(f"batch exports: [yellow]{exports.off}[/]\n", highlight=False)
        return
    drops = exports.run.drops
    console.print(
        f"batch exports: {len(drops)} CRM export files dropped into {exports.landing}/ during the run "
        "(duplicates across days, bad rows, a column added on day 2, a gzip day, one file re-sent, "
        "one day corrected); "
        f"the file loader polls every {exports.poll_seconds} s\n",
        highlight=False,
    )


def _probe(
    traffic: TrafficRun, probe: LakeProbe, latency: LatencyTracker, rows: dict[str, int]
) -> dict[str, int]:
    with traffic.lock:
        markers = dict(traffic.stats.markers)
    latency.add(markers)
    now = time.monotonic()
    try:
        latency.poll(now)
        return probe.table_rows()
    except Exception:  # a table being created or committed to right now: look again next time
        return rows
