"""A deterministic workload on the demo schema: what a B2B SaaS product does to its database.

Each ``step`` is one transaction of one kind, drawn with the seed: sign-ups (an account, its
users, memberships, subscription and flags in one multi-row transaction), invoices issued and
paid, plan changes, settings and flag toggles, logins, long ``notes`` (TOASTed) and updates
that leave them alone, removed memberships and flags, closed accounts (cascading deletes),
now and then a large transaction (hundreds to thousands of rows), and, once
``schema_change_at`` changes are done, the schema change (ADD COLUMN, then int → bigint).
``run`` paces steps to a rate in changes per second. The same seed on the same starting
database gives the same statements.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg

from insightloop.cdc.appdb.schema import PLANS, SCHEMA_CHANGES, create_schema

Conn = psycopg.Connection[tuple[Any, ...]]

_WORDS = ("acme", "globex", "initech", "umbrella", "stark", "wayne", "wonka", "tyrell", "cyberdyne", "hooli")
_FLAGS = ("new_dashboard", "ai_assist", "bulk_export", "sso_enforced", "beta_api", "dark_mode")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class WorkloadStats:
    transactions: int = 0
    changes: int = 0
    large_transactions: int = 0
    schema_changes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


class Workload:
    """Transactions against the demo schema on ``conn`` (switched to autocommit, so that each
    step's ``transaction()`` is a real transaction rather than a savepoint)."""

    def __init__(
        self,
        conn: Conn,
        seed: int = 7,
        *,
        large_every: int = 200,
        large_rows: tuple[int, int] = (300, 2000),
        schema_change_at: int | None = None,
    ) -> None:
        conn.autocommit = True
        self.conn = conn
        self.rng = random.Random(seed)
        self.large_every = large_every
        self.large_rows = large_rows
        self.schema_change_at = schema_change_at
        self.stats = WorkloadStats()
        self._accounts: list[int] = []
        self._users: list[int] = []
        self._invoices: list[int] = []
        self._members: set[tuple[int, int]] = set()
        self._flags: set[tuple[int, str]] = set()
        self._clock = _EPOCH
        create_schema(conn)
        self._load_ids()

    def _load_ids(self) -> None:
        c = self.conn
        with c.transaction():
            self._accounts = [r[0] for r in c.execute("SELECT id FROM accounts ORDER BY id")]
            self._users = [r[0] for r in c.execute("SELECT id FROM users ORDER BY id")]
            self._invoices = [
                r[0] for r in c.execute("SELECT id FROM invoices WHERE status = 'open' ORDER BY id")
            ]
            self._members = {(r[0], r[1]) for r in c.execute("SELECT account_id, user_id FROM memberships")}
            self._flags = {(r[0], r[1]) for r in c.execute("SELECT account_id, flag FROM feature_flags")}
            done = c.execute(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'accounts' AND column_name = 'industry'"
            ).fetchone()
        self.stats.schema_changes = 1 if done and done[0] else 0

    # -- driving -------------------------------------------------------------------------

    def run(
        self,
        *,
        rate: float | None = None,
        changes: int | None = None,
        duration: float | None = None,
        stop: threading.Event | None = None,
    ) -> WorkloadStats:
        """Steps until ``changes`` are made, ``duration`` seconds pass or ``stop`` is set,
        at about ``rate`` changes per second (as fast as possible when None)."""
        started = time.monotonic()
        first = self.stats.changes
        while not (stop is not None and stop.is_set()):
            done = self.stats.changes - first
            if changes is not None and done >= changes:
                break
            elapsed = time.monotonic() - started
            if duration is not None and elapsed >= duration:
                break
            if rate is not None and done > rate * elapsed:
                time.sleep(min(done / rate - elapsed, 0.05))
                continue
            self.step()
        return self.stats

    def step(self) -> int:
        """One transaction; returns the rows it changed directly (cascades not counted)."""
        self._clock += timedelta(seconds=self.rng.randint(1, 90))
        if self._schema_change_due():
            return 0
        s = self.stats
        if not self._accounts or self.rng.random() < 0.12:
            kind = "signup"
        elif self.large_every and s.transactions and s.transactions % self.large_every == 0:
            kind = "large"
        else:
            kind = self.rng.choices(list(_KINDS), weights=list(_KINDS.values()))[0]
        with self.conn.transaction():
            count = int(getattr(self, f"_{kind}")())
        s.transactions += 1
        s.changes += count
        s.kinds[kind] = s.kinds.get(kind, 0) + 1
        if kind == "large":
            s.large_transactions += 1
        return count

    def _schema_change_due(self) -> bool:
        at = self.schema_change_at
        if at is None or self.stats.schema_changes >= len(SCHEMA_CHANGES):
            return False
        # The first change at ``at`` changes, the second a little later.
        if self.stats.changes < at + self.stats.schema_changes * max(at // 4, 20):
            return False
        with self.conn.transaction():
            self.conn.execute(SCHEMA_CHANGES[self.stats.schema_changes])
        self.stats.schema_changes += 1
        return True

    # -- transaction kinds ---------------------------------------------------------------

    def _signup(self) -> int:
        rng, c = self.rng, self.conn
        word = rng.choice(_WORDS)
        plan = rng.choice(PLANS)[0]
        row = c.execute(
            "INSERT INTO accounts (name, domain, plan_id, status, settings, mrr, created_at, updated_at)"
            " VALUES (%s, %s, %s, 'trial', %s, %s, %s, %s) RETURNING id",
            (
                f"{word.title()} {rng.randint(1, 9999)}",
                f"{word}{rng.randint(1, 999)}.example",
                plan,
                orjson.dumps({"theme": rng.choice(["light", "dark"]), "seats": rng.randint(1, 40)}).decode(),
                f"{rng.randint(0, 500000) / 100:.2f}",
                self._clock,
                self._clock,
            ),
        ).fetchone()
        assert row is not None
        account = int(row[0])
        self._accounts.append(account)
        changes = 1
        for n in range(rng.randint(1, 3)):
            user = c.execute(
                "INSERT INTO users (email, full_name, locale, created_at)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (
                    f"u{account}-{n}-{rng.randint(0, 10**6)}@{word}.example",
                    f"User {account}/{n}",
                    rng.choice(["en-US", "de-DE", "fr-FR", "ja-JP"]),
                    self._clock,
                ),
            ).fetchone()
            assert user is not None
            self._users.append(int(user[0]))
            c.execute(
                "INSERT INTO memberships (account_id, user_id, role, joined_at) VALUES (%s, %s, %s, %s)",
                (account, user[0], "owner" if n == 0 else "member", self._clock),
            )
            self._members.add((account, int(user[0])))
            changes += 2
        c.execute(
            "INSERT INTO subscriptions (account_id, plan_id, status, seats, started_on)"
            " VALUES (%s, %s, %s, %s, %s)",
            (account, plan, "trialing", rng.randint(1, 20), self._clock.date()),
        )
        flag = rng.choice(_FLAGS)
        c.execute(
            "INSERT INTO feature_flags (account_id, flag, enabled, rollout, tags, updated_at)"
            " VALUES (%s, %s, true, %s, %s, %s)",
            (account, flag, rng.random(), ["signup", word], self._clock),
        )
        self._flags.add((account, flag))
        return changes + 2

    def _invoice(self) -> int:
        rng = self.rng
        account = rng.choice(self._accounts)
        rows = []
        for _ in range(rng.randint(1, 4)):
            cents = rng.randint(100, 2_000_000)
            lines = [{"sku": rng.choice(_FLAGS), "qty": rng.randint(1, 9)}]
            rows.append(
                (
                    account,
                    f"INV-{rng.randint(0, 10**9)}",
                    f"{cents / 100:.2f}",
                    cents,
                    rng.choice(["USD", "EUR"]),
                    self._clock,
                    orjson.dumps(lines).decode(),
                )
            )
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO invoices (account_id, number, amount, amount_cents, currency, issued_at, lines)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                rows,
                returning=True,
            )
            while True:
                got = cur.fetchone()
                if got is not None:
                    self._invoices.append(int(got[0]))
                if not cur.nextset():
                    break
        return len(rows)

    def _pay(self) -> int:
        if not self._invoices:
            return self._invoice()
        invoice = self._invoices.pop(self.rng.randrange(len(self._invoices)))
        cur = self.conn.execute(
            "UPDATE invoices SET status = 'paid', paid_at = %s WHERE id = %s", (self._clock, invoice)
        )
        return cur.rowcount

    def _plan_change(self) -> int:
        account = self.rng.choice(self._accounts)
        plan = self.rng.choice(PLANS)[0]
        c = self.conn
        n = c.execute(
            "UPDATE accounts SET plan_id = %s, status = 'active', updated_at = %s WHERE id = %s",
            (plan, self._clock, account),
        ).rowcount
        n += c.execute(
            "UPDATE subscriptions SET plan_id = %s, status = 'active', seats = seats + 1"
            " WHERE account_id = %s",
            (plan, account),
        ).rowcount
        return n

    def _settings(self) -> int:
        """Leaves ``notes`` alone: a TOASTed one arrives as "unchanged"."""
        account = self.rng.choice(self._accounts)
        settings = {"theme": self.rng.choice(["light", "dark"]), "digest": self.rng.random() < 0.5}
        return self.conn.execute(
            "UPDATE accounts SET settings = %s, mrr = mrr + %s, updated_at = %s WHERE id = %s",
            (
                orjson.dumps(settings).decode(),
                f"{self.rng.randint(-500, 900) / 100:.2f}",
                self._clock,
                account,
            ),
        ).rowcount

    def _notes(self) -> int:
        """A long, poorly compressible note: stored out of line (TOAST)."""
        account = self.rng.choice(self._accounts)
        note = " ".join(f"{self.rng.getrandbits(64):016x}" for _ in range(self.rng.randint(300, 900)))
        return self.conn.execute(
            "UPDATE accounts SET notes = %s, updated_at = %s WHERE id = %s", (note, self._clock, account)
        ).rowcount

    def _flag(self) -> int:
        account, flag = self.rng.choice(self._accounts), self.rng.choice(_FLAGS)
        self._flags.add((account, flag))
        return self.conn.execute(
            "INSERT INTO feature_flags (account_id, flag, enabled, rollout, updated_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (account_id, flag) DO UPDATE"
            " SET enabled = NOT feature_flags.enabled, rollout = EXCLUDED.rollout,"
            " updated_at = EXCLUDED.updated_at",
            (account, flag, self.rng.random() < 0.5, round(self.rng.random(), 3), self._clock),
        ).rowcount

    def _login(self) -> int:
        if not self._users:
            return self._signup()
        return self.conn.execute(
            "UPDATE users SET last_login_at = %s WHERE id = %s", (self._clock, self.rng.choice(self._users))
        ).rowcount

    def _leave(self) -> int:
        if not self._members:
            return self._flag()
        member = sorted(self._members)[self.rng.randrange(len(self._members))]
        self._members.discard(member)
        return self.conn.execute(
            "DELETE FROM memberships WHERE account_id = %s AND user_id = %s", member
        ).rowcount

    def _unflag(self) -> int:
        if not self._flags:
            return self._flag()
        flag = sorted(self._flags)[self.rng.randrange(len(self._flags))]
        self._flags.discard(flag)
        return self.conn.execute(
            "DELETE FROM feature_flags WHERE account_id = %s AND flag = %s", flag
        ).rowcount

    def _close(self) -> int:
        """Deletes an account; its memberships, subscriptions, invoices and flags cascade."""
        if len(self._accounts) < 5:
            return self._signup()
        account = self._accounts.pop(self.rng.randrange(len(self._accounts)))
        self._members = {m for m in self._members if m[0] != account}
        self._flags = {f for f in self._flags if f[0] != account}
        n = self.conn.execute("DELETE FROM accounts WHERE id = %s", (account,)).rowcount
        self._invoices = [r[0] for r in self.conn.execute("SELECT id FROM invoices WHERE status = 'open'")]
        return n

    def _large(self) -> int:
        """A large transaction: a bulk re-pricing of open invoices, or a bulk import of users."""
        low, high = self.large_rows
        rows = self.rng.randint(low, high)
        if self._invoices and self.rng.random() < 0.5:
            return self.conn.execute(
                'UPDATE invoices SET amount = amount * 1.01, lines = lines || \'[{"sku": "fee"}]\''
                " WHERE id IN (SELECT id FROM invoices WHERE status = 'open' ORDER BY id LIMIT %s)",
                (rows,),
            ).rowcount
        base = self.rng.randint(0, 10**9)
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO users (email, full_name, is_active, created_at)"
                " SELECT 'import-' || %s::text || '-' || g || '@bulk.example', 'Imported ' || g,"
                " g %% 7 <> 0, %s"
                " FROM generate_series(1, %s) AS g RETURNING id",
                (base, self._clock, rows),
            )
            self._users.extend(int(r[0]) for r in cur.fetchall())
        return rows


#: Transaction kinds after sign-ups, and their weights.
_KINDS = {
    "invoice": 20,
    "pay": 14,
    "plan_change": 8,
    "settings": 14,
    "notes": 4,
    "flag": 12,
    "login": 16,
    "leave": 4,
    "unflag": 3,
    "close": 1,
}
