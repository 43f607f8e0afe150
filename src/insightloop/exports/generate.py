"""Realistic CRM exports for demos, tests and benchmarks, with the mess real ones have.

``daily_exports`` writes one ``contacts_<date>.csv`` per day into
``<landing>/<source>/contacts/`` under the repository's contract ``export/contacts``: every
day some existing contacts change (so keys repeat across days, the later version winning)
and new ones appear, and a few rows are broken the ways exports break: a date that is not a
date, a stray quote inside a name, a name in latin-1 inside a UTF-8 file, a required value
missing. From ``region_from_day`` on the files gain a ``region`` column (header drift). The
last day can be gzip-compressed. What was written is returned (``DayWritten``), so a test or
the demo can say how many rows each table must hold.

``corrected_export`` writes a corrected version of one such day under the same name (into
another folder: it replaces the first when dropped in its place), as a vendor re-sends a day
it got wrong: some contacts' e-mails fixed, a few rows left out, a bad row fixed; what it
changed is returned (``Correction``).

``big_csv`` writes a large file fast (DuckDB's ``COPY``, not a Python loop), for benchmarks.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb

from insightloop.exports.sql import lit

ENTITY = "contacts"
HEADER = [
    "contact_id",
    "email",
    "first_name",
    "last_name",
    "company_id",
    "lifecycle_stage",
    "employees",
    "annual_revenue",
    "opted_in",
    "created_at",
    "updated_at",
]
_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman"]
_ACCENTED = ["Renée", "José", "Zoë", "Björn", "Ñandú"]
_STAGES = ["lead", "marketing_qualified", "sales_qualified", "opportunity", "customer"]
_REGIONS = ["emea", "amer", "apac"]


@dataclass
class DayWritten:
    path: Path
    period: str
    rows: int = 0
    #: Rows that must land in quarantine (bad dates, bytes not in UTF-8, a missing key).
    bad: int = 0
    #: Rows with a stray quote inside a field (still good rows).
    stray_quotes: int = 0
    #: Keys of the file's good rows.
    keys: set[str] = field(default_factory=set)
    #: The ``updated_at`` of each good row, by key (which version of a key is the latest).
    updated: dict[str, str] = field(default_factory=dict)
    #: The sha256 of the file's bytes as written (compressed or not): its identity in the lake.
    sha256: str = ""


#: The e-mail domain a corrected export moves its fixed contacts to (no other file has it).
CORRECTED_DOMAIN = "example.org"


@dataclass
class Correction:
    """A corrected export of an earlier day (``replaces``): same name, same period."""

    #: The corrected file, as written.
    day: DayWritten
    replaces: DayWritten
    #: Keys of good rows whose e-mail the correction changed (to ``CORRECTED_DOMAIN``).
    changed: set[str]
    #: Keys of good rows of the first version that the correction leaves out.
    removed: set[str]
    #: Keys of bad rows of the first version that the correction fixed (good rows now).
    fixed: set[str]


@dataclass
class _Contact:
    key: str
    created: str
    version: int = 0


def daily_exports(
    landing: Path,
    *,
    days: int = 3,
    contacts: int = 1000,
    source: str = "hubspot",
    start: date = date(2026, 11, 23),
    seed: int = 7,
    mess: float = 0.001,
    region_from_day: int = 2,
    gzip_last: bool = True,
) -> list[DayWritten]:
    """Write ``days`` daily contacts exports; ``mess`` is the share of each kind of broken row
    (the default keeps a day's bad rows well under ``exports.max_bad_fraction``'s 1 %)."""
    rng = random.Random(seed)
    folder = landing / source / ENTITY
    folder.mkdir(parents=True, exist_ok=True)
    people = [_Contact(f"c{i:07d}", _moment(start - timedelta(days=30), rng)) for i in range(contacts)]
    written = []
    for day in range(days):
        today = start + timedelta(days=day)
        changed = list(people) if day == 0 else rng.sample(people, k=len(people) // 4)
        fresh = [_Contact(f"c{len(people) + i:07d}", _moment(today, rng)) for i in range(contacts // 20)]
        people += fresh
        header = HEADER + (["region"] if day >= region_from_day else [])
        name = f"contacts_{today.isoformat()}.csv" + (".gz" if gzip_last and day == days - 1 else "")
        result = DayWritten(folder / name, today.isoformat())
        lines = [",".join(header).encode()]
        for person in [*changed, *fresh]:
            person.version += 1
            lines.append(_line(person, today, header, rng, mess, result))
        result.sha256 = _write(result.path, b"\n".join(lines) + b"\n")
        written.append(result)
    return written


def corrected_export(
    day: DayWritten, folder: Path, *, seed: int = 7, change: float = 0.05, remove: float = 0.02
) -> Correction:
    """A corrected version of ``day``'s file, written as ``folder/<its name>``: ``change`` of
    its good rows get their e-mail fixed (to ``CORRECTED_DOMAIN``), ``remove`` of the others
    are left out, and its first bad row that has a key is fixed (a valid ``updated_at``, UTF-8).
    The other rows are the same bytes. (This generator's values hold no comma and it quotes
    nothing, so its lines split on commas.)"""
    rng = random.Random(seed)
    data = day.path.read_bytes()
    if day.path.name.endswith(".gz"):
        data = gzip.decompress(data)
    first, *rows = data.rstrip(b"\n").split(b"\n")
    header = first.decode().split(",")
    key_at, email_at, updated_at = (header.index(name) for name in ("contact_id", "email", "updated_at"))
    good = sorted(day.keys)
    changed = set(rng.sample(good, k=round(len(good) * change)))
    removed = set(rng.sample(sorted(day.keys - changed), k=round(len(good) * remove)))
    fixed: set[str] = set()
    out = DayWritten(folder / day.path.name, day.period)
    lines = [first]
    for line in rows:
        fields = line.split(b",")
        key = fields[key_at].decode("latin-1")
        if key in removed:
            continue
        if key in changed:
            fields[email_at] = f"{key}@{CORRECTED_DOMAIN}".encode()
        elif key and key not in day.keys and not fixed:
            fields = [_as_utf8(value) for value in fields]
            fields[updated_at] = _moment(date.fromisoformat(day.period), rng).encode()
            fixed.add(key)
            out.updated[key] = fields[updated_at].decode()
        lines.append(b",".join(fields))
        out.stray_quotes += int(b'"' in line)
    out.rows = len(lines) - 1
    out.bad = day.bad - len(fixed)
    out.keys = (day.keys - removed) | fixed
    out.updated.update((key, moment) for key, moment in day.updated.items() if key not in removed)
    folder.mkdir(parents=True, exist_ok=True)
    out.sha256 = _write(out.path, b"\n".join(lines) + b"\n")
    return Correction(out, day, changed, removed, fixed)


def _as_utf8(value: bytes) -> bytes:
    """A field in UTF-8 (one written in latin-1 by mistake re-encoded)."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1").encode("utf-8")
    return value


def _write(path: Path, data: bytes) -> str:
    """Write ``data`` (gzip-compressed for a ``.gz`` name); the sha256 of the bytes written."""
    stored = gzip.compress(data) if path.name.endswith(".gz") else data
    path.write_bytes(stored)
    return hashlib.sha256(stored).hexdigest()


def _line(
    person: _Contact, today: date, header: list[str], rng: random.Random, mess: float, out: DayWritten
) -> bytes:
    values = {
        "contact_id": person.key,
        "email": f"{person.key}@example.com",
        "first_name": rng.choice(_FIRST),
        "last_name": rng.choice(_LAST),
        "company_id": f"co{rng.randrange(500):05d}",
        "lifecycle_stage": rng.choice(_STAGES),
        "employees": str(rng.randrange(1, 5000)),
        "annual_revenue": f"{rng.uniform(1e4, 5e7):.2f}",
        "opted_in": rng.choice(["true", "false", ""]),
        "created_at": person.created,
        "updated_at": _moment(today, rng),
        "region": rng.choice(_REGIONS),
    }
    out.rows += 1
    roll = rng.random()
    encoding = "utf-8"
    if roll < mess:
        values["updated_at"] = rng.choice(["2026-13-45T10:00:00Z", "11/25/2026 10:00", "yesterday"])
        out.bad += 1
    elif roll < 2 * mess:
        values["first_name"] = rng.choice(_ACCENTED)
        encoding = "latin-1"  # an upstream tool that wrote one record in the wrong encoding
        out.bad += 1
    elif roll < 3 * mess:
        values["last_name"] = f'{values["last_name"]} "the {rng.choice(["great", "elder"])}"'
        out.stray_quotes += 1
    elif roll < 4 * mess:
        values["contact_id"] = ""
        out.bad += 1
    if roll >= 4 * mess or 2 * mess <= roll < 3 * mess:
        out.keys.add(person.key)
        out.updated[person.key] = values["updated_at"]
    return ",".join(values[name] for name in header).encode(encoding)


def _moment(day: date, rng: random.Random) -> str:
    return f"{day.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"


def big_csv(
    path: Path,
    rows: int,
    *,
    bad_every: int = 0,
    day: str = "2026-11-25",
    start: int = 0,
    keys: int | None = None,
) -> int:
    """A contacts CSV of ``rows`` rows updated on ``day`` (every ``bad_every``-th with a date
    that is not one), written by DuckDB; returns its size in bytes. Row ``i`` runs from
    ``start``; its key is ``c`` and ``i`` modulo ``keys`` (90 % of ``rows``: a tenth of the
    rows repeat a key), so a smaller file's keys are among a larger one's, and files with
    other ``start`` values differ (the parts of a day)."""
    date.fromisoformat(day)  # a date, or ValueError: it goes into the SQL below
    updated = f"strftime(TIMESTAMP '{day}' + to_seconds(i % 86400), '%Y-%m-%dT%H:%M:%SZ')"
    if bad_every:
        updated = f"CASE WHEN i % {bad_every} = 0 THEN 'not a date' ELSE {updated} END"
    query = f"""
        SELECT printf('c%09d', i % {max(keys or rows * 9 // 10, 1)}) AS contact_id,
               printf('user%d@example.com', i) AS email,
               ['Ada','Grace','Alan','Edsger','Barbara'][1 + i % 5] AS first_name,
               ['Lovelace','Hopper','Turing','Dijkstra'][1 + i % 4] AS last_name,
               printf('co%05d', i % 500) AS company_id,
               ['lead','customer','opportunity'][1 + i % 3] AS lifecycle_stage,
               (i % 5000)::VARCHAR AS employees,
               printf('%.2f', (i % 100000) * 37.5) AS annual_revenue,
               CASE WHEN i % 2 = 0 THEN 'true' ELSE 'false' END AS opted_in,
               strftime(TIMESTAMP '2026-01-01' + to_seconds(i % 9999999), '%Y-%m-%dT%H:%M:%SZ') AS created_at,
               {updated} AS updated_at
        FROM range({int(start)}, {int(start) + int(rows)}) t(i)
    """
    connection = duckdb.connect()
    try:
        connection.execute("SET enable_progress_bar = false")
        connection.execute(f"COPY ({query}) TO {lit(str(path))} (FORMAT csv, HEADER true)")
    finally:
        connection.close()
    return path.stat().st_size
