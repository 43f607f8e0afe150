"""Helpers of the CDC end-to-end tests: one real PostgreSQL, the real ``cdc-reader`` and
``cdc-processor`` processes (``testing.Services``), and comparisons of the source tables with
the lake's ``cleaned.app_<table>`` tables, read independently on each side (psycopg's own
types on one, Arrow's on the other) and normalised the same way."""

from __future__ import annotations

import base64
import math
import struct
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pyarrow.compute as pc
from psycopg.types.string import TextLoader
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.types import StringType

from insightloop.cdc.appdb import server
from insightloop.cdc.appdb.schema import create_schema
from insightloop.cdc.state import load_state, parse_lsn, state_path
from insightloop.config import Config, load_config
from insightloop.lake.catalog import open_catalog
from insightloop.log.factory import open_cdc_log
from insightloop.processor.cdc.naming import history_identifier, state_identifier
from insightloop.processor.cdc.pgtypes import iceberg_type, is_json
from insightloop.processor.cdc.raw_rows import CDC_CHANGES
from insightloop.processor.cdc.stage import stored_watermark
from insightloop.processor.progress import committed_progress
from insightloop.testing import Services

Key = tuple[Any, ...]
Rows = dict[Key, dict[str, Any]]


def new_database(port: int, name: str) -> str:
    """A new database ``name`` with the demo schema; its DSN."""
    with psycopg.connect(server.dsn_for(port, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = server.dsn_for(port, name)
    with psycopg.connect(dsn) as conn:
        create_schema(conn)
    return dsn


def cdc_env(dsn: str, slot: str) -> dict[str, str]:
    return {
        "INSIGHTLOOP__CDC__ENABLED": "true",
        "INSIGHTLOOP__CDC__DSN": dsn,
        "INSIGHTLOOP__CDC__SLOT": slot,
        "INSIGHTLOOP__CDC__PUBLICATION": slot,
        "INSIGHTLOOP__CDC__METRICS_PORT": "0",
        "INSIGHTLOOP__CDC__PROCESSOR_METRICS_PORT": "0",
        "INSIGHTLOOP__LOG__FSYNC": "false",
        "INSIGHTLOOP__PROCESSOR__MAX_BATCH_SECONDS": "0.5",
        "INSIGHTLOOP__CONTRACTS__MODE": "off",
    }


def cdc_services(data_dir: Path, dsn: str, slot: str) -> tuple[Services, Config]:
    env = cdc_env(dsn, slot)
    services = Services(data_dir, extra_env=env)
    return services, load_config(environ={"INSIGHTLOOP_DATA_DIR": str(data_dir), **env})


def current_lsn(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        return parse_lsn(row[0])


def wait_for(
    check: Callable[[], bool], timeout: float, what: str, services: Services | None = None, poll: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if services is not None:
            for name, proc in services.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited ({proc.returncode}): {services.output(name)}")
        if time.monotonic() > deadline:
            outputs = ""
            if services is not None:
                outputs = "".join(f"\n--- {n}:\n{services.output(n)[-2000:]}" for n in services.procs)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{outputs}")
        time.sleep(poll)


def reader_confirmed(config: Config) -> int:
    st = load_state(state_path(config))
    return st.confirmed_lsn if st is not None and st.snapshot.complete else 0


def log_end(config: Config) -> int:
    """The offset the CDC log's next record gets."""
    log = open_cdc_log(config)
    try:
        shard = log.shards()[0]
        records = log.lag(shard, None).records
        return int(records or 0)
    finally:
        log.close()


def redelivered(config: Config) -> int:
    """Streamed changes raw holds more than once (sent again by the slot after a crash)."""
    raw = open_catalog(config).load_table(CDC_CHANGES).scan(selected_fields=("event_id", "delivery"))
    data = raw.to_arrow()
    streamed = data.filter(pc.invert(pc.match_substring(data.column("delivery"), '"op":"r"')))
    return int(streamed.num_rows - len(pc.unique(streamed.column("event_id"))))


def raw_committed(config: Config) -> int:
    """How many CDC log records stage 1 has committed to raw."""
    try:
        raw = open_catalog(config).load_table(CDC_CHANGES)
    except NoSuchTableError:
        return 0
    return max(committed_progress(raw).positions.values(), default=-1) + 1


def processor_applied(config: Config, end: int) -> bool:
    """Stage 1 committed every log record before ``end`` and stage 2 applied them all."""
    try:
        raw = open_catalog(config).load_table(CDC_CHANGES)
    except NoSuchTableError:
        return end == 0
    progress = committed_progress(raw)
    done = max(progress.positions.values(), default=-1)
    return done >= end - 1 and stored_watermark(config) >= progress.seq


def wait_applied(config: Config, dsn: str, services: Services, timeout: float = 90.0) -> None:
    """Until the processor has applied every change up to the source's current WAL position:
    the reader confirmed it (so it is in the log), then raw and stage 2 hold the whole log."""
    target = current_lsn(dsn)
    wait_for(lambda: reader_confirmed(config) >= target, timeout, "the reader to catch up", services)
    end = log_end(config)
    wait_for(lambda: processor_applied(config, end), timeout, "the processor to apply the log", services)


# -- comparing ----------------------------------------------------------------------------


def column_types(conn: psycopg.Connection[tuple[Any, ...]], table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (f"public.{table}",),
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def key_columns(conn: psycopg.Connection[tuple[Any, ...]], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY a.attnum",
        (f"public.{table}",),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _element(value: Any) -> Any:
    """An array element (psycopg's type) as the envelope carries it (JSON)."""
    if isinstance(value, list):
        return [_element(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | dt_time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def normalise(pg_type: str, value: Any, *, lake: bool = False) -> Any:
    """One value, from either side, in one comparable form: JSON documents and arrays parsed
    (the lake keeps them as JSON text, psycopg parses them) and re-serialised with sorted
    keys, decimals as their exact decimal text, timestamps as UTC ISO-8601, dates ISO, a
    ``real`` as the float32 it is. Types the lake keeps as text are read as PostgreSQL's text
    output on the source side (``source_tables``)."""
    if value is None:
        return None
    if pg_type in ("json", "jsonb"):
        parsed = orjson.loads(value) if lake else value
        return orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS).decode()
    if pg_type.endswith("[]"):
        parsed = orjson.loads(value) if lake else _element(value)
        return orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS).decode()
    if pg_type == "real" and isinstance(value, float) and not math.isnan(value):
        return struct.unpack("f", struct.pack("f", value))[0]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return "naive:" + value.isoformat()
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, bool | int | float | str | bytes):
        return value
    raise AssertionError(f"unexpected {type(value).__name__} {value!r:.80} for {pg_type}")


def tables(dsn: str) -> list[str]:
    """The source's tables (the demo's and any a test adds), all captured."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
    return [str(r[0]) for r in rows]


def _as_text(pg_type: str) -> bool:
    """The lake keeps the type's values as PostgreSQL prints them (uuid, time, interval…)."""
    return isinstance(iceberg_type(pg_type), StringType) and not is_json(pg_type)


def source_tables(dsn: str) -> dict[str, tuple[dict[str, str], list[str], Rows]]:
    """Per table: column types, key columns and the rows (normalised), read by psycopg."""
    out: dict[str, tuple[dict[str, str], list[str], Rows]] = {}
    names = tables(dsn)
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for table in names:
            types = column_types(conn, table)
            key = key_columns(conn, table)
            rows: Rows = {}
            with conn.cursor() as cur:
                oids = conn.execute(
                    "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass"
                    " AND attnum > 0 AND NOT attisdropped",
                    (f"public.{table}",),
                ).fetchall()
                for name, oid in oids:
                    if _as_text(types[name]):
                        cur.adapters.register_loader(oid, TextLoader)
                cur.execute(psycopg.sql.SQL("SELECT * FROM {}").format(psycopg.sql.Identifier(table)))
                names = [d.name for d in cur.description or ()]
                for raw in cur:
                    row = {n: normalise(types[n], v) for n, v in zip(names, raw, strict=True)}
                    rows[tuple(row[k] for k in key)] = row
            out[table] = (types, key, rows)
    return out


def lake_rows(catalog: Catalog, table: str, types: dict[str, str], key: list[str]) -> Rows:
    """The live rows of ``cleaned.app_<table>``, the source's columns only, normalised."""
    try:
        data = catalog.load_table(state_identifier(f"public.{table}")).scan().to_arrow()
    except NoSuchTableError:
        return {}
    data = data.filter(pc.invert(data.column("_deleted")))
    rows: Rows = {}
    for raw in data.to_pylist():
        missing = set(types) - set(raw)
        assert not missing, f"cleaned.app_{table} lacks columns {missing}"
        row = {n: normalise(t, raw[n], lake=True) for n, t in types.items()}
        rows[tuple(row[k] for k in key)] = row
    return rows


def assert_lake_equals_source(config: Config, dsn: str) -> dict[str, int]:
    """Every ``cleaned.app_<table>`` (live rows) equals its source table, row for row and
    column for column; returns the row count per table."""
    catalog = open_catalog(config)
    counts: dict[str, int] = {}
    problems: list[str] = []
    for table, (types, key, want) in source_tables(dsn).items():
        got = lake_rows(catalog, table, types, key)
        missing, extra = set(want) - set(got), set(got) - set(want)
        differ = [k for k in set(want) & set(got) if want[k] != got[k]]
        if missing or extra or differ:
            sample = ""
            if differ:
                k = sorted(differ, key=repr)[0]
                cols = {n: (want[k][n], got[k][n]) for n in want[k] if want[k][n] != got[k][n]}
                sample = f"; e.g. key {k}: (source, lake) {cols}"
            problems.append(
                f"{table}: {len(missing)} missing, {len(extra)} extra, {len(differ)} differ "
                f"of {len(want)}{sample} (missing e.g. {sorted(missing, key=repr)[:3]},"
                f" extra e.g. {sorted(extra, key=repr)[:3]})"
            )
        counts[table] = len(want)
    assert not problems, "lake differs from the source:\n" + "\n".join(problems)
    return counts


def history_ids(config: Config, names: list[str]) -> dict[str, list[str]]:
    catalog = open_catalog(config)
    out: dict[str, list[str]] = {}
    for table in names:
        try:
            data = catalog.load_table(history_identifier(f"public.{table}")).scan(
                selected_fields=("event_id",)
            )
            out[table] = data.to_arrow().column("event_id").to_pylist()
        except NoSuchTableError:
            out[table] = []
    return out


def assert_no_duplicate_history(config: Config, dsn: str) -> dict[str, list[str]]:
    ids = history_ids(config, tables(dsn))
    for table, found in ids.items():
        seen: set[str] = set()
        twice = {i for i in found if i in seen or seen.add(i)}  # type: ignore[func-returns-value]
        if twice:
            data = open_catalog(config).load_table(history_identifier(f"public.{table}")).scan().to_arrow()
            rows = [r for r in data.to_pylist() if r["event_id"] in twice][:6]
            raise AssertionError(f"cleaned.app_{table}_changes holds {len(twice)} event ids twice: {rows}")
    return ids


def change_counts(dsn: str) -> dict[str, int]:
    """Rows inserted + updated + deleted per table, as the server's statistics count them
    (independent of the reader); flushed when the writing sessions end."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
            " WHERE schemaname = 'public'"
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def row_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {
            t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]
            for t in tables(dsn)
        }


def edge_values(conn: psycopg.Connection[tuple[Any, ...]], tag: str) -> int:
    """One transaction of values that are easy to get wrong between the two sides: JSON with
    big and precise numbers, escapes and unicode; arrays with NULLs, quotes, commas, braces
    and backslashes; NaN and infinite floats; timestamps with odd offsets and microseconds;
    padded char(n). Returns the rows it changed."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO accounts (name, domain, plan_id, settings, notes, mrr, created_at, updated_at)"
            " VALUES (%s, NULL, 4, %s::jsonb, %s, '0.01', '2026-03-01 12:34:56.789012+05:30',"
            " '1970-01-01 00:00:00+00') RETURNING id",
            (
                f"Edge\t{tag} ünïcödé 😀",
                '{"int": 9007199254740993, "tiny": 1e-300, "half": 2.50, "esc": "a\\"b\\\\c\\n",'
                ' "emoji": "😀", "nested": {"a": [1, {"b": null}]},'
                ' "empty": {}, "list": []}',
                "line1\nline2 \\ back",
            ),
        ).fetchone()
        assert row is not None
        account = int(row[0])
        conn.execute(
            "INSERT INTO feature_flags (account_id, flag, enabled, rollout, tags) VALUES"
            " (%s, 'edge_nan', true, 'NaN',"
            "  ARRAY['a,b', 'quote\"d', 'back\\slash', NULL, '{brace}', '', 'NULL']),"
            " (%s, 'edge_inf', false, '-Infinity', '{}'),"
            " (%s, 'edge_small', false, 5e-324, ARRAY[' lead', 'trail '])",
            (account, account, account),
        )
        conn.execute(
            "INSERT INTO invoices (account_id, number, amount, amount_cents, currency, issued_at, lines)"
            " VALUES (%s, %s, '99999999.99', 2147483647, 'ab', '2026-06-30 23:59:59.999999-11:00',"
            " %s::jsonb)",
            (account, f"INV-edge-{tag}", '[{"sku": "x", "qty": 1.50, "note": null}]'),
        )
        conn.execute(
            "INSERT INTO subscriptions (account_id, plan_id, status, seats, started_on, ends_on, cancel_at)"
            " VALUES (%s, 4, 'active', 1, '0001-01-01', '9999-12-31', '2026-01-01 00:00:00.000001+00')",
            (account,),
        )
        # A JSON document that is a bare string.
        conn.execute("UPDATE accounts SET settings = '\"plain\"'::jsonb WHERE id = %s", (account,))
    return 7


def move_keys(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    """Updates that change primary keys: a feature flag renamed within its account, and one
    moved to another account (another bucket of the lake table). Each is one source update
    and two history rows (the old key's delete, the new key's row). Returns the moves."""
    moves = 0
    with conn.transaction():
        accounts = [r[0] for r in conn.execute("SELECT id FROM accounts ORDER BY id").fetchall()]
        flags = conn.execute(
            "SELECT account_id, flag FROM feature_flags WHERE flag NOT LIKE 'moved%%' ORDER BY 1, 2 LIMIT 2"
        ).fetchall()
        if len(flags) == 2 and len(accounts) > 1:
            account, flag = flags[0]
            moves += conn.execute(
                "UPDATE feature_flags SET flag = 'moved_' || flag WHERE account_id = %s AND flag = %s",
                (account, flag),
            ).rowcount
            account, flag = flags[1]
            other = accounts[-1] if accounts[-1] != account else accounts[0]
            moves += conn.execute(
                "UPDATE feature_flags SET account_id = %s, flag = 'moved_from_' || account_id || flag"
                " WHERE account_id = %s AND flag = %s",
                (other, account, flag),
            ).rowcount
    return moves


ZOO = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE type_zoo (
    id uuid PRIMARY KEY,
    i2 smallint, i8 bigint, f4 real, f8 double precision,
    n numeric, n38 numeric(38,10), n50 numeric(50,5),
    b boolean, d date, t time, ttz timetz, ts timestamp, ts3 timestamp(3), tstz timestamptz(2),
    iv interval, by bytea, vc varchar(10), ch char(4), mo mood, ip inet, mn money,
    j json, jb jsonb,
    ai int[], ai2 int[][], at text[], an numeric[], ab bool[], atz timestamptz[], ats timestamp[],
    ad date[], au uuid[], am mood[], aby bytea[], af8 float8[]
);
"""

_ZOO_ROW = """
INSERT INTO type_zoo SELECT
    gen_random_uuid(), (g %% 32000)::smallint, 9007199254740993 * g, 1.1 * g, 0.1 + 0.2 * g,
    CASE WHEN g %% 5 = 0 THEN 'NaN'::numeric ELSE 123.4500 * g END, 1234567890.0123456789 * g,
    12345678901234567890123456789012345678901234.56789 * g,
    g %% 2 = 0, date '2026-02-28' + g, time '23:59:59.999999', timetz '10:00:00.5+05:30',
    timestamp '2026-01-01 00:00:00.000001' + g * interval '1 hour', timestamp '1999-12-31 23:59:59.123',
    timestamptz '2026-03-29 01:30:00.126+01' + g * interval '1 day',
    interval '1 year 2 mons 3 days 04:05:06.7' * g, decode('00ff' || lpad(to_hex(g), 4, '0'), 'hex'),
    'vc' || g, 'c' || (g %% 10), (ARRAY['sad', 'ok', 'happy'])[1 + g %% 3]::mood,
    ('10.0.' || (g %% 255) || '.1/24')::inet, (g * 1.25)::money,
    ('{"z": 1, "a": [1.5, "x", null], "g": ' || g || '}')::json,
    ('{"nested": {"k": "v\\u00e9"}, "g": ' || g || ', "t": true}')::jsonb,
    ARRAY[g, NULL, -g], ARRAY[[1, 2], [3, g]], ARRAY['a b', 'c"d', 'e\\f', NULL, ''],
    ARRAY[1.50, 2, NULL]::numeric[], ARRAY[true, NULL, false],
    ARRAY[timestamptz '2026-01-01 12:00:00+02', NULL], ARRAY[timestamp '2026-01-01 12:00:00'],
    ARRAY[date '2026-01-02'], ARRAY[gen_random_uuid()], ARRAY['happy', 'sad']::mood[],
    ARRAY['\\x00ff'::bytea, NULL], ARRAY['NaN'::float8, 1.5, '-Infinity']
FROM generate_series(%s::int, %s::int) AS g
"""


def create_zoo(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    """A table of most PostgreSQL types (scalars, arrays of them, enums, ranges of
    precision), for the type mapping end to end."""
    with conn.transaction():
        conn.execute(ZOO)


def zoo_changes(conn: psycopg.Connection[tuple[Any, ...]], first: int, last: int) -> int:
    """Rows ``first``..``last`` inserted, then some updated and one deleted."""
    with conn.transaction():
        changed = conn.execute(_ZOO_ROW, (first, last)).rowcount
    with conn.transaction():
        changed += conn.execute(
            "UPDATE type_zoo SET f8 = 'Infinity', n = 'NaN', at = '{}', jb = '[]', iv = interval '-1 day',"
            " mo = 'ok' WHERE i2 %% 3 = 0 AND i2 BETWEEN %s AND %s",
            (first, last),
        ).rowcount
        changed += conn.execute("DELETE FROM type_zoo WHERE i2 = %s", (last,)).rowcount
    return changed
