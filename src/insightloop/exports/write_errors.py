"""What a failure to write the lake looks like, from each library that writes it: the OS
(``OSError``: ENOSPC on a full disk, EFBIG past a file-size limit, EDQUOT), DuckDB
(``duckdb.IOException``: its COPY into cleaned) and the SQLite catalog
(``sqlalchemy.exc.OperationalError``: "database or disk is full"). The file loader turns them
into a ``failed`` file, retried at its next look, rather than a crash or a rejection (a
rejection is the file's fault; these are not)."""

from __future__ import annotations

import duckdb
from sqlalchemy.exc import OperationalError

WRITE_ERRORS: tuple[type[BaseException], ...] = (OSError, duckdb.IOException, OperationalError)


def first_line(exc: BaseException) -> str:
    """The error's first line (SQLAlchemy appends its SQL and a link; DuckDB its context)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
