"""Unchanged Segment and RudderStack client libraries deliver events end to end."""

from __future__ import annotations

import pytest
from e2e_support import WRITE_KEY, read_table, wait_for

from insightloop.config import Config
from insightloop.testing import Services

pytestmark = pytest.mark.slow


def _ids(config: Config, identifier: str) -> list[str]:
    table = read_table(config, identifier)
    return [] if table is None else table.column("id").to_pylist()


def test_segment_python_client_events_land_exactly_once(services: Services, config: Config) -> None:
    from segment.analytics.client import Client

    services.start_pipeline()
    client = Client(write_key=WRITE_KEY, host=services.url, gzip=True, sync_mode=True, max_retries=1)
    sent = []
    for i in range(20):
        message_id = f"seg-{i}"
        client.track(
            user_id=f"user-{i % 3}",
            event="Report Created",
            properties={"report_id": i, "title": f"Weekly {i}", "shared": i % 2 == 0},
            message_id=message_id,
        )
        sent.append(message_id)
    # An SDK retry after a timeout: the same messageIds again.
    for message_id in sent[:5]:
        client.track(
            user_id="user-0", event="Report Created", properties={"report_id": -1}, message_id=message_id
        )
    client.identify(
        user_id="user-0", traits={"email": "ada@example.com", "plan": "pro"}, message_id="seg-id-0"
    )
    client.flush()

    wait_for(lambda: len(_ids(config, "cleaned.report_created")) >= 20, 90, "report_created rows")
    wait_for(lambda: len(_ids(config, "cleaned.identifies")) >= 1, 30, "identifies rows")
    wait_for(lambda: len(_ids(config, "cleaned.users")) >= 1, 30, "users rows")
    tracks = _ids(config, "cleaned.tracks")
    per_event = read_table(config, "cleaned.report_created")
    assert per_event is not None
    assert sorted(tracks) == sorted(sent)
    assert sorted(per_event.column("id").to_pylist()) == sorted(sent)
    # The first copy wins: retried ids keep their original properties.
    by_id = dict(
        zip(per_event.column("id").to_pylist(), per_event.column("report_id").to_pylist(), strict=True)
    )
    assert by_id["seg-3"] == 3
    assert set(per_event.column("event_text").to_pylist()) == {"Report Created"}
    users = read_table(config, "cleaned.users")
    assert users is not None and users.column("email").to_pylist() == ["ada@example.com"]


def test_rudderstack_python_client_events_land(services: Services, config: Config) -> None:
    from rudderstack.analytics.client import Client

    services.start_pipeline()
    client = Client(write_key=WRITE_KEY, host=services.url, sync_mode=True, max_retries=1)
    for i in range(10):
        client.page(
            user_id=f"user-{i}",
            name="Pricing",
            properties={"url": f"https://x.test/p{i}"},
            message_id=f"rs-{i}",
        )
    client.flush()
    wait_for(lambda: len(_ids(config, "cleaned.pages")) >= 10, 90, "pages rows")
    assert sorted(_ids(config, "cleaned.pages")) == sorted(f"rs-{i}" for i in range(10))
