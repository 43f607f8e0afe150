"""Realistic ~1.5 KB Segment events for benchmarks, shared by every bench module."""

from __future__ import annotations

import random

import orjson

EVENT_NAMES = ["Report Created", "Dashboard Viewed", "Export Downloaded", "Invite Sent", "Filter Applied"]


def track_event(i: int, rng: random.Random, id_prefix: str = "b") -> dict[str, object]:
    account = rng.randrange(200)
    user = f"user-{account}-{rng.randrange(40)}"
    return {
        "type": "track",
        "messageId": f"{id_prefix}-{i:012d}",
        "userId": user,
        "anonymousId": f"anon-{rng.getrandbits(64):016x}",
        "event": EVENT_NAMES[i % len(EVENT_NAMES)],
        "timestamp": "2026-11-26T09:59:58.120Z",
        "sentAt": "2026-11-26T10:00:00.000Z",
        "properties": {
            "report_id": rng.randrange(10**6),
            "dashboard": f"Revenue overview {rng.randrange(50)}",
            "filters": ["region=emea", "plan=pro"],
            "row_count": rng.randrange(10**5),
            "duration_ms": round(rng.uniform(5, 5000), 2),
            "shared": rng.random() < 0.3,
            "workspace_id": f"ws-{account}",
            "feature_flag": "new-charts",
            "source_view": "grid",
            "query_text": "select region, sum(revenue) from sales group by 1 order by 2 desc",
            "breadcrumb": "Home > Workspaces > Revenue > Reports > Quarterly revenue by region > Overview",
            "experiment": {"id": f"exp-{rng.randrange(9)}", "variant": rng.choice(["control", "b"])},
            "chart_type": rng.choice(["bar", "line", "table", "pie"]),
            "columns": rng.randrange(1, 30),
            "export_format": rng.choice(["csv", "xlsx", "pdf"]),
            "description": "Quarterly revenue by region with churn overlay, shared with the leadership team",
        },
        "context": {
            "library": {"name": "analytics.js", "version": "5.2.1"},
            "page": {
                "path": "/app/reports/123",
                "referrer": "https://app.insightloop.test/app/home",
                "title": "Reports - InsightLoop",
                "url": "https://app.insightloop.test/app/reports/123?tab=overview",
            },
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "ip": f"203.0.113.{rng.randrange(255)}",
            "locale": "en-US",
            "timezone": "Europe/Berlin",
            "groupId": f"acct-{account}",
            "campaign": {"name": "winter-launch", "source": "newsletter", "medium": "email"},
            "os": {"name": "Mac OS X", "version": "10.15.7"},
            "screen": {"width": 1728, "height": 1117, "density": 2},
            "session_id": rng.getrandbits(40),
        },
        "integrations": {"All": True},
    }


def track_events(n: int, seed: int = 1, id_prefix: str = "b") -> list[bytes]:
    rng = random.Random(seed)
    return [orjson.dumps(track_event(i, rng, id_prefix)) for i in range(n)]
