"""What every command shares: the ``--config`` path, loading config once, and how errors exit.

Exit codes: 0 success, 1 failure (bad SQL, a service that keeps crashing …), 2 bad config or
usage. Errors print one line to stderr, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import typer

from insightloop.config import Config, load_config
from insightloop.errors import ConfigError

CONFIG_EXIT = 2


@dataclass
class CliState:
    config_path: Path | None = None
    _config: Config | None = field(default=None, init=False)

    def config(self) -> Config:
        """The configuration, loaded on first use; bad config exits with code 2."""
        if self._config is None:
            with config_errors_exit():
                self._config = load_config(self.config_path)
        return self._config


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_object(CliState)
    return obj if obj is not None else CliState()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` to stderr; return the ``Exit`` to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def config_errors_exit() -> Iterator[None]:
    """Turn a ``ConfigError`` raised inside into exit code 2 with its message."""
    try:
        yield
    except ConfigError as exc:
        raise fail(str(exc), CONFIG_EXIT) from None
