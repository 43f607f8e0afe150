"""Stage 2's contract check: each kept message's properties/traits against its contract.

``Contracts.load(config)`` loads the registry once, when the stage starts (a missing
contracts folder is a ``ConfigError`` then, unless every mode is ``off``). ``check`` takes
the kept messages of one batch and returns, beside each message's position, the failures
that send it to quarantine (``contract_violation`` under ``enforce``, ``no_contract`` when
the policy quarantines events without one) and how many invalid events ``warn`` let through
(and, per position, its violations: the row's ``_contract_warning`` column).

MODEL versions: a breaking change gets a new MODEL (``invite_sent`` ``2-0-0``), and a track
event valid under MODEL 2 or higher lands in a table of its own (``cleaned.invite_sent_v2``;
``models`` says which), the old one kept. An event that pins a version is checked against
that version alone. One that pins none is checked against the latest version; if it breaks
it, against the latest version of each older MODEL, newest first, and it lands in the table
of the first MODEL it satisfies: producers still sending the old shape keep loading into the
old table during a migration. Its violations, when it satisfies none, are those of the
latest version.

Column types: ``hints(kind, name, model)`` gives the column types the contract of a table
asks for (``hints``): the latest version of the table's MODEL, the one its events were
checked against (for identify/group, the latest version). Computed once per contract.

Exactly once: a decision depends only on the message, its source and the registry, so a
replay of the same raw rows in the same process (or a restarted one with the same contracts)
decides the same. Changing the contracts folder (or ``[contracts]``) changes the decisions of
rows replayed after the change: rows already committed stay as they were.

Cost: lookups are cached per (source, type, name, pin); properties are decoded with orjson
and checked with one ``is_valid`` call per valid event (the fast path of ``validate_batch``,
event by event so each decoded object is freed at once); only an invalid event pays for
``validate``'s violations. ``context`` is decoded only when its bytes mention
``schema_version``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from insightloop.config import Config, contracts_enabled
from insightloop.contracts import Contract, ContractError, Mode, NoContract, Registry, validate
from insightloop.contracts.registry import KINDS, PIN_FIELD, contract_name
from insightloop.errors import ConfigError
from insightloop.processor.cleaned.hints import Hints, schema_hints
from insightloop.segment.message import Message

CONTRACT_VIOLATION = "contract_violation"
NO_CONTRACT = "no_contract"
_PIN = PIN_FIELD.encode()


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why the kept message at ``position`` goes to quarantine."""

    position: int
    kind: str
    field: str | None
    reason: str
    contract: str | None
    violations: str | None


@dataclass(slots=True)
class Checked:
    """What ``check`` found in one batch."""

    quarantined: list[Verdict] = field(default_factory=list)
    #: Invalid events loaded anyway (``warn``), by contract key.
    warned: dict[str, int] = field(default_factory=dict)
    #: Per position of an event loaded despite its contract (``warn``): its violations.
    warnings: dict[int, str] = field(default_factory=dict)
    #: Per position of a valid track event whose contract's MODEL is above 1: that MODEL
    #: (the event lands in ``<event>_v<MODEL>``, a table of its own).
    models: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to do with messages of one (source, type, name, pin)."""

    mode: Mode
    no_contract: NoContract
    contract: Contract | None
    #: For an event that pins no version: the latest version of each older MODEL, newest
    #: first, tried when the event breaks the latest contract.
    older: tuple[Contract, ...] = ()


class Contracts:
    """The registry and the policy, loaded once per process."""

    def __init__(self, registry: Registry | None, config: Config) -> None:
        self._registry = registry
        self._policy = config.contracts
        self._plans: dict[tuple[str, str, str | None, str | None], _Plan] = {}
        self._hints: dict[tuple[str, str, int | None], Hints] = {}

    @classmethod
    def load(cls, config: Config) -> Contracts:
        """The contracts of ``config.contracts.dir``; ``ConfigError`` if they cannot be loaded."""
        policy = config.contracts
        if not contracts_enabled(policy):
            return cls(None, config)
        try:
            registry = Registry.load(policy.dir)
        except ContractError as exc:
            raise ConfigError(
                f'contracts.dir: {exc} (create it, point contracts.dir at one, or set contracts.mode = "off")'
            ) from exc
        return cls(registry, config)

    @property
    def active(self) -> bool:
        return self._registry is not None

    def check(self, sources: Sequence[str], messages: Sequence[Message]) -> Checked:
        """Verdicts for ``messages`` (``sources[i]`` is the source of ``messages[i]``)."""
        checked = Checked()
        if self._registry is None:
            return checked
        for position, (source, message) in enumerate(zip(sources, messages, strict=True)):
            kind = message.type or ""
            if kind not in KINDS:
                continue
            plan = self._plan(source, message)
            if plan.mode == Mode.OFF:
                continue
            contract = plan.contract
            if contract is None:
                if plan.no_contract == NoContract.QUARANTINE:
                    name = contract_name(kind, _name(message))
                    reason = f"no contract for {kind}/{name}"
                    checked.quarantined.append(Verdict(position, NO_CONTRACT, None, reason, None, None))
                continue
            # Decoded and checked one at a time: the decoded object is freed at once (holding a
            # batch of them made the cyclic GC rescan them all, doubling the cost).
            instance = _instance(message)
            passed = _passes(contract, instance)
            if passed is None:
                passed = next((older for older in plan.older if _passes(older, instance)), None)
            if passed is not None:
                if passed.version.model > 1 and kind == "track":
                    checked.models[position] = passed.version.model
                continue
            violations = validate(contract, instance)
            if not violations:
                continue
            key = contract.key
            if plan.mode == Mode.WARN:
                checked.warned[key] = checked.warned.get(key, 0) + 1
                checked.warnings[position] = f"{key}: " + "; ".join(map(str, violations))
                if contract.version.model > 1 and kind == "track":
                    checked.models[position] = contract.version.model
                continue
            detail = orjson.dumps(
                [{"pointer": v.pointer, "keyword": v.keyword, "message": v.message} for v in violations]
            ).decode()
            what = "traits" if contract.kind in ("identify", "group") else "properties"
            reason = f"{len(violations)} violation(s) of {key}: {violations[0]}"
            checked.quarantined.append(Verdict(position, CONTRACT_VIOLATION, what, reason, key, detail))
        checked.quarantined.sort(key=lambda verdict: verdict.position)
        return checked

    def hints(self, kind: str, name: str, model: int | None = None) -> Hints:
        """The column types (key path → kind) the contract of ``kind``/``name`` gives its
        properties or traits: its latest version of MODEL ``model`` (1 also covers MODEL 0;
        None: the latest of any MODEL). Empty without contracts or without such a version."""
        key = (kind, name, model)
        hints = self._hints.get(key)
        if hints is None:
            contract = self._latest(kind, contract_name(kind, name), model)
            hints = _EMPTY if contract is None else schema_hints(contract.schema)
            if len(self._hints) < 100_000:
                self._hints[key] = hints
        return hints

    def _latest(self, kind: str, name: str, model: int | None) -> Contract | None:
        if self._registry is None:
            return None
        versions = self._registry.versions(kind, name)
        if model is not None:
            # Events of MODEL 0 land with those of MODEL 1 (only MODELs above 1 get a table).
            versions = [c for c in versions if max(c.version.model, 1) == model]
        return versions[-1] if versions else None

    def _plan(self, source: str, message: Message) -> _Plan:
        kind = message.type or ""
        name = _name(message)
        pin = _pin(message)
        cache_key = (source, kind, name, pin)
        plan = self._plans.get(cache_key)
        if plan is None:
            assert self._registry is not None
            contract_key = contract_name(kind, name)
            decision = self._policy.decide(source, kind, contract_key)
            contract = self._registry.lookup(kind, contract_key, pin) if decision.mode != Mode.OFF else None
            older: tuple[Contract, ...] = ()
            if contract is not None and pin is None:
                latest_of_model: dict[int, Contract] = {}
                for version in self._registry.versions(kind, contract_key):
                    if version.version.model < contract.version.model:
                        latest_of_model[version.version.model] = version
                older = tuple(latest_of_model[model] for model in sorted(latest_of_model, reverse=True))
            plan = self._plans[cache_key] = _Plan(decision.mode, decision.no_contract, contract, older)
        return plan


_EMPTY: Hints = {}


def _passes(contract: Contract, instance: object) -> Contract | None:
    """``contract`` when ``instance`` is valid under it, else None."""
    try:
        if type(instance) is dict and contract.validator.is_valid(instance):
            return contract
    except (ValueError, TypeError):
        pass
    return None


def _name(message: Message) -> str | None:
    return message.event if message.type == "track" else message.name


def _pin(message: Message) -> str | None:
    context = message.context
    if not len(context) or _PIN not in bytes(context):
        return None
    try:
        decoded = orjson.loads(bytes(context))
    except orjson.JSONDecodeError:
        return None
    pin = decoded.get(PIN_FIELD) if isinstance(decoded, dict) else None
    return pin if isinstance(pin, str) and pin else None


def _instance(message: Message) -> object:
    """The object a message's contract describes, decoded (raw bytes when it does not decode:
    ``validate`` then reports it)."""
    raw = message.traits if message.type in ("identify", "group") else message.properties
    if not len(raw):
        return {}
    try:
        return orjson.loads(bytes(raw))
    except orjson.JSONDecodeError:
        return bytes(raw)
