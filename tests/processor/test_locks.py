"""The per-lake locks: a second holder is refused, or waits for a short-lived one to let go."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from insightloop.errors import TerminalError
from insightloop.processor.runner import exclusive


def test_a_held_lock_is_refused_at_once_without_a_wait(tmp_path: Path) -> None:
    lock = tmp_path / "cleaner.lock"
    with exclusive(lock, "first"), pytest.raises(TerminalError, match="taken"), exclusive(lock, "taken"):
        pass


def test_a_waiting_holder_gets_the_lock_once_the_first_lets_go(tmp_path: Path) -> None:
    lock = tmp_path / "cleaner.lock"
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with exclusive(lock, "first"):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    threading.Timer(0.3, release.set).start()
    with exclusive(lock, "still taken", wait=30):
        assert not holder.is_alive() or release.is_set()
    holder.join(10)
