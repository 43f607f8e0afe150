"""What to do with an event, per source and per contract: the types the config will hold.

- ``mode``: ``enforce`` (an invalid event goes to quarantine), ``warn`` (loaded, and flagged
  with its violations), ``off`` (not validated).
- ``no_contract``: an event with no contract is ``allow``-ed (properties kept as JSON) or
  ``quarantine``-d.

The most specific setting wins: a contract's (``"track/report_created"``), then the
source's, then the default. Meant to be mounted as ``[contracts]`` in the config (the keys
are in this session's report); until then ``ContractsPolicy()`` gives the defaults.
"""

from __future__ import annotations

import enum

import msgspec


class Mode(enum.StrEnum):
    ENFORCE = "enforce"
    WARN = "warn"
    OFF = "off"


class NoContract(enum.StrEnum):
    ALLOW = "allow"
    QUARANTINE = "quarantine"


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Settings that override the defaults; unset ones fall through."""

    mode: Mode | None = None
    no_contract: NoContract | None = None


class Decision(msgspec.Struct, frozen=True):
    mode: Mode
    no_contract: NoContract


class ContractsPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[contracts]``: the folder, the defaults, and overrides per source and per contract."""

    dir: str = "contracts"
    mode: Mode = Mode.ENFORCE
    no_contract: NoContract = NoContract.ALLOW
    #: Source name (as in ``collector.sources``) → its settings.
    sources: dict[str, Rule] = msgspec.field(default_factory=dict)
    #: ``"<kind>/<name>"`` (e.g. ``"track/report_created"``) → its settings.
    contracts: dict[str, Rule] = msgspec.field(default_factory=dict)

    def decide(self, source: str, kind: str, name: str) -> Decision:
        """The settings for an event of ``source`` whose contract is (or would be) ``kind/name``."""
        mode, no_contract = self.mode, self.no_contract
        for rule in (self.sources.get(source), self.contracts.get(f"{kind}/{name}")):
            if rule is None:
                continue
            mode = rule.mode or mode
            no_contract = rule.no_contract or no_contract
        return Decision(mode, no_contract)
