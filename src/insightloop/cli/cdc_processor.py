"""``insightloop cdc-processor``: the CDC log → ``raw.cdc_changes`` → ``cleaned.app_<table>``
(current state) and ``cleaned.app_<table>_changes`` (history), in the foreground, until
SIGINT/SIGTERM (the micro-batch in hand is committed first). One per lake."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from insightloop.cli.context import state


def cdc_processor(ctx: typer.Context) -> None:
    """Run the CDC processor (CDC log → raw → cleaned app_* current-state and history tables)."""
    from insightloop.cli.services import service_running
    from insightloop.processor.cdc.runner import run

    config = state(ctx).config()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    with service_running(config, "cdc-processor"):
        run(config, stop=stop)
