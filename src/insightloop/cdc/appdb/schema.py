"""The demo application's schema: a B2B SaaS product (accounts on plans, their users and
memberships, subscriptions, invoices, feature flags).

Primary keys everywhere (the default replica identity sends them with deletes), foreign
keys, ``numeric`` money, ``timestamptz``, ``jsonb`` settings, and ``accounts.notes``, a text
column the workload makes large enough to be TOASTed (so updates that leave it alone send
it as "unchanged").
"""

from __future__ import annotations

import psycopg

TABLES = ("plans", "accounts", "users", "memberships", "subscriptions", "invoices", "feature_flags")

DDL = """
CREATE TABLE IF NOT EXISTS plans (
    id integer PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    monthly_price numeric(10,2) NOT NULL,
    seats integer,
    features jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS accounts (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    domain text,
    plan_id integer REFERENCES plans(id),
    status text NOT NULL DEFAULT 'trial',
    settings jsonb NOT NULL DEFAULT '{}',
    notes text,
    mrr numeric(12,2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    full_name text,
    locale text DEFAULT 'en-US',
    is_active boolean NOT NULL DEFAULT true,
    last_login_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS memberships (
    account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'member',
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    plan_id integer NOT NULL REFERENCES plans(id),
    status text NOT NULL,
    seats integer NOT NULL DEFAULT 1,
    started_on date NOT NULL,
    ends_on date,
    cancel_at timestamptz
);
CREATE TABLE IF NOT EXISTS invoices (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    number text NOT NULL,
    amount numeric(12,2) NOT NULL,
    amount_cents integer NOT NULL,
    currency char(3) NOT NULL DEFAULT 'USD',
    status text NOT NULL DEFAULT 'open',
    issued_at timestamptz NOT NULL,
    paid_at timestamptz,
    lines jsonb NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS feature_flags (
    account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    flag text NOT NULL,
    enabled boolean NOT NULL,
    rollout double precision,
    tags text[],
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, flag)
);
"""

PLANS = [
    (1, "free", "Free", "0.00", 3, '{"sso": false, "api": false}'),
    (2, "team", "Team", "49.00", 10, '{"sso": false, "api": true}'),
    (3, "business", "Business", "249.00", 50, '{"sso": true, "api": true}'),
    (4, "enterprise", "Enterprise", "1999.00", None, '{"sso": true, "api": true, "audit": true}'),
]

#: The schema change made part-way through a workload: first additive, then a type change
#: (integer → bigint, a promotion Iceberg allows).
SCHEMA_CHANGES = (
    "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS industry text",
    "ALTER TABLE invoices ALTER COLUMN amount_cents TYPE bigint",
)


def create_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the tables (if missing) and the plans; idempotent."""
    with conn.transaction():
        conn.execute(DDL)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO plans (id, code, name, monthly_price, seats, features)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                PLANS,
            )
