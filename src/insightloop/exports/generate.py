"""Realistic CRM exports for demos, tests and benchmarks, with the mess real ones have.

``daily_exports`` writes one ``contacts_<date>.csv`` per day into
``<landing>/<source>/contacts/`` under the repository's contract ``export/contacts``: every
day some existing contacts change (so keys repeat across days, the later version winning)
and new ones appear, and a few rows are broken the ways exports break: a date that is not a
date, a stray quote inside a name, a name in latin-1 inside a UTF-8 file, a required value
missing. From ``region_from_day`` on the files gain a ``region`` column (header drift). The
last day can be gzip-compressed. What was written is returned (``DayWritten``), so a test or
the demo can say how many rows each table must hold.

``big_csv`` writes a large file fast (DuckDB's ``COPY``, not a Python loop), for benchmarks.
"""

from __future__ import annotations

import gzip
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
        data = b"\n".join(lines) + b"\n"
        result.path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        written.append(result)
    return written


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
    return ",".join(values[name] for name in header).encode(encoding)


def _moment(day: date, rng: random.Random) -> str:
    return f"{day.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"


def big_csv(path: Path, rows: int, *, bad_every: int = 0) -> int:
    """A contacts CSV of ``rows`` rows (every ``bad_every``-th with a date that is not one),
    written by DuckDB; returns its size in bytes."""
    updated = "strftime(TIMESTAMP '2026-11-25' + to_seconds(i % 86400), '%Y-%m-%dT%H:%M:%SZ')"
    if bad_every:
        updated = f"CASE WHEN i % {bad_every} = 0 THEN 'not a date' ELSE {updated} END"
    query = f"""
        SELECT printf('c%09d', i % {max(rows * 9 // 10, 1)}) AS contact_id,
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
        FROM range({int(rows)}) t(i)
    """
    connection = duckdb.connect()
    try:
        connection.execute("SET enable_progress_bar = false")
        connection.execute(f"COPY ({query}) TO {lit(str(path))} (FORMAT csv, HEADER true)")
    finally:
        connection.close()
    return path.stat().st_size
