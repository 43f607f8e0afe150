from __future__ import annotations

import msgspec

from insightloop.contracts.policy import ContractsPolicy, Mode, NoContract


def test_the_most_specific_setting_wins() -> None:
    policy = msgspec.convert(
        {
            "mode": "enforce",
            "no_contract": "allow",
            "sources": {"mobile": {"mode": "warn", "no_contract": "quarantine"}},
            "contracts": {"track/report_created": {"mode": "off"}},
        },
        ContractsPolicy,
    )
    web = policy.decide("web", "track", "dashboard_viewed")
    assert (web.mode, web.no_contract) == (Mode.ENFORCE, NoContract.ALLOW)
    mobile = policy.decide("mobile", "track", "dashboard_viewed")
    assert (mobile.mode, mobile.no_contract) == (Mode.WARN, NoContract.QUARANTINE)
    report = policy.decide("mobile", "track", "report_created")
    assert (report.mode, report.no_contract) == (Mode.OFF, NoContract.QUARANTINE)


def test_defaults() -> None:
    decision = ContractsPolicy().decide("web", "identify", "traits")
    assert (decision.mode, decision.no_contract) == (Mode.ENFORCE, NoContract.ALLOW)
