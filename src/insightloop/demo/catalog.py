"""The demo's cast: a B2B SaaS product's accounts, users, pages, screens and feature events."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

COMPANIES = [
    ("Acme Analytics", "acme.io", "software"),
    ("Borealis Foods", "borealis-foods.com", "food & beverage"),
    ("Cobalt Freight", "cobaltfreight.com", "logistics"),
    ("Dunmore Health", "dunmorehealth.org", "healthcare"),
    ("Evergreen Bank", "evergreen.bank", "financial services"),
    ("Fjord Studios", "fjordstudios.no", "media"),
    ("Granite Robotics", "graniterobotics.ai", "manufacturing"),
    ("Helio Energy", "helio.energy", "energy"),
    ("Iris Retail", "irisretail.com", "retail"),
    ("Juniper Schools", "juniper.edu", "education"),
    ("Kestrel Travel", "kestrel.travel", "travel"),
    ("Lumen Legal", "lumenlegal.law", "legal services"),
]
FIRST_NAMES = [
    "Ada",
    "Ben",
    "Chloe",
    "Diego",
    "Elif",
    "Farah",
    "Goran",
    "Hana",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
]
LAST_NAMES = ["Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka", "Umar", "Varga", "Weber"]
PLANS = ["free", "team", "business", "enterprise"]
ROLES = ["viewer", "editor", "admin"]
TIMEZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "America/Sao_Paulo", "Europe/London"]

MARKETING_PAGES = [
    ("Home", "/", "InsightLoop — product analytics for B2B teams"),
    ("Pricing", "/pricing", "Pricing — InsightLoop"),
    ("Customers", "/customers", "Customer stories — InsightLoop"),
    ("Blog", "/blog/retention-curves-explained", "Retention curves, explained"),
    ("Docs", "/docs/getting-started", "Getting started — InsightLoop docs"),
]
APP_PAGES = [
    ("Dashboards", "/app/dashboards", "Dashboards"),
    ("Reports", "/app/reports", "Reports"),
    ("Report Builder", "/app/reports/new", "New report"),
    ("Settings", "/app/settings", "Settings"),
    ("Billing", "/app/settings/billing", "Billing"),
    ("Team", "/app/settings/team", "Team"),
]
SCREENS = ["Home", "Dashboard Detail", "Report Detail", "Notifications", "Settings", "Search"]
REFERRERS = ["https://www.google.com/", "https://www.linkedin.com/", "https://news.ycombinator.com/", "", ""]
REPORT_TYPES = ["funnel", "retention", "cohort", "kpi", "segmentation"]
ONBOARDING_STEPS = ["connect_source", "invite_team", "first_report", "first_dashboard", "set_alert"]
DASHBOARDS = ["Weekly KPIs", "Activation", "Revenue", "Support Load", "Onboarding Funnel"]

Properties = Callable[[random.Random], dict[str, Any]]

#: Feature-use track events (name, properties, relative frequency).
FEATURE_EVENTS: list[tuple[str, Properties, int]] = [
    (
        "Dashboard Viewed",
        lambda r: {
            "dashboard_id": f"dsh_{r.randrange(1, 60):03d}",
            "dashboard_name": r.choice(DASHBOARDS),
            "widgets": r.randrange(2, 18),
        },
        10,
    ),
    (
        "Report Created",
        lambda r: {
            "report_id": f"rpt_{r.getrandbits(32):08x}",
            "report_type": r.choice(REPORT_TYPES),
            "data_source": r.choice(["events", "warehouse", "csv"]),
        },
        4,
    ),
    (
        "Export Downloaded",
        lambda r: {
            "format": r.choice(["csv", "xlsx", "pdf"]),
            "rows": r.randrange(10, 50_000),
            "report_id": f"rpt_{r.getrandbits(32):08x}",
        },
        3,
    ),
    (
        "Invite Sent",
        lambda r: {
            "invitee_email": f"{r.choice(FIRST_NAMES).lower()}@example.com",
            "role": r.choice(ROLES),
        },
        2,
    ),
]
FEATURE_WEIGHTS = [weight for _, _, weight in FEATURE_EVENTS]
#: A track event with no contract in contracts/: the default policy (``no_contract = "allow"``)
#: loads it as it is.
NO_CONTRACT_EVENT = "Onboarding Step Completed"

#: Schema drift: from some point on, a new client version adds a property to this event that
#: its contract (``additionalProperties: false``) does not allow.
DRIFT_EVENT = "Export Downloaded"
DRIFT_PROPERTY = "destination"
DRIFT_VALUES = ["google_drive", "s3", "email"]
