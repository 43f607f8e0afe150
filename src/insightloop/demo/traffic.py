"""Realistic B2B SaaS product traffic in Segment's wire format, deterministic for a seed.

Each call to ``Traffic.next_batch(now)`` gives one ``/v1/batch`` request body (gzip'd JSON),
as an SDK would flush it at ``now``: anonymous visitors browsing, visitors signing up
(identify with traits, group, alias), web app sessions (pages, feature events,
upgrades), mobile sessions (screens) sent with another source's write key. And the nasty
data SDKs really send: identical re-sends of a batch (SDK retry after a timeout),
out-of-order events, mobile sessions flushed days late (old timestamps, ``sentAt`` now), a
client whose clock is hours off, and now and then an invalid event (no user or anonymous
id) inside an otherwise good batch.

Contract trouble, when asked for (``DEMO_SHARES`` and ``drift_at``; the defaults send none, so
plain traffic meets every contract in ``contracts/``): schema drift (from ``drift_at`` on, a
new client version adds a property that ``DRIFT_EVENT``'s contract does not allow), events
that break their contract (a wrong type, a missing required property), and an event that has
no contract at all (loaded under the default policy). Each batch says which of its events
are which, so the demo can compare what it sent with what the tables hold.

Bodies are built only when asked for (so ``sentAt`` is the real send time), from contexts
and traits built once per user.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from insightloop.demo.catalog import (
    APP_PAGES,
    COMPANIES,
    DASHBOARDS,
    DRIFT_EVENT,
    DRIFT_PROPERTY,
    DRIFT_VALUES,
    FEATURE_EVENTS,
    FEATURE_WEIGHTS,
    FIRST_NAMES,
    LAST_NAMES,
    MARKETING_PAGES,
    NO_CONTRACT_EVENT,
    ONBOARDING_STEPS,
    PLANS,
    REFERRERS,
    ROLES,
    SCREENS,
    TIMEZONES,
)

#: A late event's client timestamp is at least this old (the demo report counts it as late).
LATE_AFTER = dt.timedelta(days=1)


@dataclass(frozen=True)
class Shares:
    """How often each kind of nasty data appears."""

    #: Batches sent a second time, byte for byte (an SDK retrying after a timeout).
    retried_batches: float = 0.05
    #: Mobile sessions flushed 1-5 days late (the device was offline).
    late_sessions: float = 0.15
    #: Batches carrying one invalid event (neither userId nor anonymousId).
    invalid_batches: float = 0.06
    #: Batches whose events are not in time order.
    shuffled_batches: float = 0.15
    #: Batches carrying one track event that breaks its contract (wrong type, missing property).
    contract_broken_batches: float = 0.0
    #: Batches carrying one track event that has no contract (``NO_CONTRACT_EVENT``).
    no_contract_batches: float = 0.0


#: The demo's shares: the nasty data above plus events that break or lack their contract.
DEMO_SHARES = Shares(contract_broken_batches=0.04, no_contract_batches=0.05)


@dataclass(frozen=True)
class OutgoingBatch:
    """One request: who sends it, its gzip'd body, and what is in it (for the report)."""

    batch_id: int
    write_key: str
    body: bytes
    events: int
    #: messageIds of the events that meet the spec and their contract (or have none): the
    #: events expected in cleaned.
    valid_ids: tuple[str, ...]
    invalid: int
    #: Events meeting the spec (valid, drifted, broken) whose client time is more than
    #: ``LATE_AFTER`` before ``sentAt``.
    late: int
    #: A byte-for-byte re-send of batch ``batch_id``.
    retry: bool
    #: A valid, on-time track event's messageId, for measuring time to visibility.
    marker: str | None
    types: Counter[str] = field(default_factory=Counter)
    #: Events that meet the spec but carry the drift property (``DRIFT_EVENT``).
    drifted_ids: tuple[str, ...] = ()
    #: Events that meet the spec but break their contract.
    broken_ids: tuple[str, ...] = ()
    #: Valid events with no contract (also in ``valid_ids``).
    no_contract_ids: tuple[str, ...] = ()


@dataclass
class _Account:
    group_id: str
    name: str
    domain: str
    industry: str
    plan: str
    employees: int
    created_at: str


@dataclass
class _User:
    user_id: str
    anonymous_id: str
    device_anonymous_id: str
    email: str
    first_name: str
    last_name: str
    role: str
    account: _Account
    created_at: str
    identified: bool
    skew: dt.timedelta
    web_context: dict[str, Any]
    mobile_context: dict[str, Any]


def iso(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``, as the SDKs write it."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Traffic:
    def __init__(
        self,
        web_write_key: str,
        mobile_write_key: str,
        seed: int = 7,
        shares: Shares | None = None,
        accounts: int = 12,
        drift_at: dt.datetime | None = None,
    ) -> None:
        self.web_key = web_write_key
        self.mobile_key = mobile_write_key
        self.shares = shares or Shares()
        #: From this time on, ``DRIFT_EVENT`` events carry ``DRIFT_PROPERTY`` (None: never).
        self.drift_at = drift_at
        self._drifting = False
        self._rng = random.Random(seed)
        self._accounts = [self._account(i) for i in range(min(accounts, len(COMPANIES)))]
        self._users = [self._user(i) for i in range(len(self._accounts) * 6)]
        # One laptop with its clock 2 h 17 min fast: its events must still land at the right time.
        self._users[3].skew = dt.timedelta(hours=2, minutes=17)
        self._next_id = 0
        self._retries: list[tuple[int, OutgoingBatch]] = []

    # -- the cast ---------------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _account(self, index: int) -> _Account:
        name, domain, industry = COMPANIES[index]
        r = self._rng
        return _Account(
            group_id=f"acc_{index + 1:03d}",
            name=name,
            domain=domain,
            industry=industry,
            plan=r.choice(PLANS[:3]),
            employees=r.choice([12, 45, 180, 800, 2400]),
            created_at=f"20{r.randrange(19, 26)}-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}T09:00:00Z",
        )

    def _user(self, index: int) -> _User:
        r = self._rng
        account = self._accounts[index % len(self._accounts)]
        first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
        anonymous_id, device_id = self._uuid(), self._uuid()
        tz = r.choice(TIMEZONES)
        web = {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
            "locale": "en-US",
            "timezone": tz,
            "ip": f"203.0.113.{index % 250 + 1}",
        }
        mobile = {
            "library": {"name": "analytics-ios", "version": "4.1.8"},
            "app": {
                "name": "InsightLoop",
                "version": "3.12.0",
                "build": "3120",
                "namespace": "io.insightloop.app",
            },
            "device": {"id": device_id, "manufacturer": "Apple", "model": "iPhone15,2", "type": "ios"},
            "os": {"name": "iOS", "version": "17.5.1"},
            "network": {"wifi": r.random() < 0.7, "cellular": True},
            "locale": "en-US",
            "timezone": tz,
        }
        return _User(
            user_id=f"usr_{index + 1:04d}",
            anonymous_id=anonymous_id,
            device_anonymous_id=device_id,
            email=f"{first.lower()}.{last.lower()}{index}@{account.domain}",
            first_name=first,
            last_name=last,
            role=r.choice(ROLES),
            account=account,
            created_at=f"2026-{r.randrange(1, 11):02d}-{r.randrange(1, 29):02d}T10:00:00.000Z",
            identified=r.random() < 0.6,
            skew=dt.timedelta(0),
            web_context=web,
            mobile_context=mobile,
        )

    # -- batches ----------------------------------------------------------------------------

    def next_batch(self, now: dt.datetime) -> OutgoingBatch:
        """The next request to send at ``now`` (aware, UTC)."""
        self._next_id += 1
        if self._retries and self._retries[0][0] <= self._next_id:
            return self._retries.pop(0)[1]
        batch = self._new_batch(self._next_id, now)
        if self._rng.random() < self.shares.retried_batches:
            again = dataclasses.replace(batch, retry=True, marker=None)
            self._retries.append((self._next_id + self._rng.randrange(1, 5), again))
            self._retries.sort(key=lambda item: item[0])
        return batch

    def _new_batch(self, batch_id: int, now: dt.datetime) -> OutgoingBatch:
        r = self._rng
        self._drifting = self.drift_at is not None and now >= self.drift_at
        user = r.choice(self._users)
        kind = r.choices(["visit", "web", "mobile"], weights=[15, 55, 30])[0]
        late = False
        if kind == "mobile":
            late = r.random() < self.shares.late_sessions
            events = self._mobile_session(user)
        elif kind == "visit" or not user.identified:
            events = self._visit(user, signs_up=kind != "visit")
        else:
            events = self._web_session(user)
        client_now = now + user.skew if kind != "mobile" else now
        start = client_now - dt.timedelta(seconds=r.uniform(0.5, 3.0))
        if late:
            start -= dt.timedelta(days=r.uniform(1.0, 5.0))
        gaps = [r.uniform(1.0, 20.0) for _ in events]
        moment = start - dt.timedelta(seconds=sum(gaps))
        for event, gap in zip(events, gaps, strict=True):
            moment += dt.timedelta(seconds=gap)
            event["timestamp"] = iso(moment)
        drifted = [e["messageId"] for e in events if DRIFT_PROPERTY in e.get("properties", {})]
        marker = next(
            (e["messageId"] for e in events if e["type"] == "track" and e["messageId"] not in drifted), None
        )
        breaking: list[str] = []
        no_contract: list[str] = []
        context = user.mobile_context if kind == "mobile" else user.web_context
        for share, make, ids in (
            (self.shares.contract_broken_batches, self._broken_track, breaking),
            (self.shares.no_contract_batches, self._uncontracted_track, no_contract),
        ):
            if r.random() < share:
                extra = make(user, context)
                extra["timestamp"] = events[-1]["timestamp"]
                events.insert(r.randrange(len(events) + 1), extra)
                ids.append(extra["messageId"])
        valid = [
            e["messageId"] for e in events if e["messageId"] not in drifted and e["messageId"] not in breaking
        ]
        types = Counter(e["type"] for e in events if e["messageId"] in valid)
        invalid = 0
        if r.random() < self.shares.invalid_batches:
            broken = {k: v for k, v in r.choice(events).items() if k not in ("userId", "anonymousId")}
            broken["messageId"] = self._uuid()
            events.insert(r.randrange(len(events) + 1), broken)
            invalid = 1
        if r.random() < self.shares.shuffled_batches:
            r.shuffle(events)
        body = {"batch": events, "sentAt": iso(client_now)}
        return OutgoingBatch(
            batch_id=batch_id,
            write_key=self.mobile_key if kind == "mobile" else self.web_key,
            body=gzip.compress(orjson.dumps(body), compresslevel=1, mtime=0),
            events=len(events),
            valid_ids=tuple(valid),
            invalid=invalid,
            # Late events are counted in raw, where drifted and broken ones are too.
            late=len(valid) + len(drifted) + len(breaking) if late else 0,
            retry=False,
            marker=None if late else marker,
            types=types,
            drifted_ids=tuple(drifted),
            broken_ids=tuple(breaking),
            no_contract_ids=tuple(no_contract),
        )

    # -- sessions ---------------------------------------------------------------------------

    def _message(self, kind: str, user: _User, context: dict[str, Any], **fields: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"type": kind, "messageId": self._uuid(), "context": context}
        if user.identified:
            message["userId"] = user.user_id
        message["anonymousId"] = (
            user.device_anonymous_id if context is user.mobile_context else user.anonymous_id
        )
        message.update(fields)
        message["integrations"] = {}
        return message

    def _page(self, user: _User, page: tuple[str, str, str], referrer: str) -> dict[str, Any]:
        name, path, title = page
        host = "app.insightloop.io" if path.startswith("/app") else "www.insightloop.io"
        url = f"https://{host}{path}"
        properties = {"title": title, "url": url, "path": path, "referrer": referrer, "search": ""}
        return self._message("page", user, user.web_context, name=name, properties=properties)

    def _track(self, user: _User, context: dict[str, Any]) -> dict[str, Any]:
        name, properties, _ = self._rng.choices(FEATURE_EVENTS, weights=FEATURE_WEIGHTS)[0]
        props = properties(self._rng)
        if self._drifting and name == DRIFT_EVENT:
            props[DRIFT_PROPERTY] = self._rng.choice(DRIFT_VALUES)
        return self._message("track", user, context, event=name, properties=props)

    def _broken_track(self, user: _User, context: dict[str, Any]) -> dict[str, Any]:
        """A track event that breaks its contract: ``widgets`` sent as text, or a Report
        Created without its required ``report_type``."""
        r = self._rng
        if r.random() < 0.5:
            props: dict[str, Any] = {
                "dashboard_id": f"dsh_{r.randrange(1, 60):03d}",
                "dashboard_name": r.choice(DASHBOARDS),
                "widgets": str(r.randrange(2, 18)),
            }
            return self._message("track", user, context, event="Dashboard Viewed", properties=props)
        props = {"report_id": f"rpt_{r.getrandbits(32):08x}", "data_source": "events"}
        return self._message("track", user, context, event="Report Created", properties=props)

    def _uncontracted_track(self, user: _User, context: dict[str, Any]) -> dict[str, Any]:
        r = self._rng
        props = {"step": r.choice(ONBOARDING_STEPS), "step_number": r.randrange(1, 6)}
        return self._message("track", user, context, event=NO_CONTRACT_EVENT, properties=props)

    def _visit(self, user: _User, signs_up: bool) -> list[dict[str, Any]]:
        """Anonymous marketing pages; a visitor who signs up then identifies, joins their
        account (group) and links the anonymous id (alias)."""
        r = self._rng
        referrer = r.choice(REFERRERS)
        events = [self._page(user, r.choice(MARKETING_PAGES), referrer) for _ in range(r.randrange(2, 6))]
        if not signs_up or user.identified:
            return events
        user.identified = True
        events.append(
            self._message(
                "identify",
                user,
                user.web_context,
                traits={
                    "email": user.email,
                    "firstName": user.first_name,
                    "lastName": user.last_name,
                    "plan": user.account.plan,
                    "role": user.role,
                    "createdAt": user.created_at,
                    "company": {"id": user.account.group_id, "name": user.account.name},
                },
            )
        )
        events.append(self._group(user))
        events.append(
            self._message("track", user, user.web_context, event="Signed Up", properties={"method": "email"})
        )
        if r.random() < 0.5:
            events.append(self._message("alias", user, user.web_context, previousId=user.anonymous_id))
        return events

    def _group(self, user: _User) -> dict[str, Any]:
        account = user.account
        traits = {
            "name": account.name,
            "plan": account.plan,
            "industry": account.industry,
            "employees": account.employees,
            "website": f"https://{account.domain}",
            "createdAt": account.created_at,
        }
        return self._message("group", user, user.web_context, groupId=account.group_id, traits=traits)

    def _web_session(self, user: _User) -> list[dict[str, Any]]:
        r = self._rng
        context = {**user.web_context, "groupId": user.account.group_id}
        events = [self._page(user, r.choice(APP_PAGES), "")]
        for _ in range(r.randrange(2, 12)):
            events.append(
                self._track(user, context) if r.random() < 0.7 else self._page(user, r.choice(APP_PAGES), "")
            )
        if r.random() < 0.03 and user.account.plan != PLANS[-1]:
            old = user.account.plan
            user.account.plan = PLANS[PLANS.index(old) + 1]
            events.append(self._page(user, APP_PAGES[4], ""))
            events.append(
                self._message(
                    "track",
                    user,
                    context,
                    event="Subscription Upgraded",
                    properties={
                        "from_plan": old,
                        "to_plan": user.account.plan,
                        "billing_cycle": r.choice(["monthly", "annual"]),
                        "mrr_change": round(r.uniform(50, 2000), 2),
                        "currency": "USD",
                    },
                )
            )
            events.append(self._group(user))
        return events

    def _mobile_session(self, user: _User) -> list[dict[str, Any]]:
        r = self._rng
        context = user.mobile_context
        events = [
            self._message(
                "screen", user, context, name=r.choice(SCREENS), properties={"from_push": r.random() < 0.2}
            )
            for _ in range(r.randrange(2, 7))
        ]
        events.extend(self._track(user, context) for _ in range(r.randrange(0, 3)))
        return events
