"""The contracts folder, loaded once: every contract file checked and its validator compiled.

Layout (see ``contracts/README.md``): ``<dir>/<kind>/<name>/<MODEL-REVISION-ADDITION>.json``,
e.g. ``contracts/track/report_created/1-0-1.json``. ``kind`` is the Segment message type
whose object the contract describes (a track event's ``properties``, identify's and group's
``traits``), ``name`` the snake-cased event name (``"Report Created"`` → ``report_created``,
the same function that names the event's table) or ``traits`` for identify and group.

A message may pin a version in ``context.schema_version``: a full version (``"1-0-1"``) or a
model alone (``"1"``: the latest ``1-*-*``). Without a pin the latest version applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from insightloop.contracts.errors import ContractError, SchemaVerError
from insightloop.contracts.schemaver import SchemaVer

#: Message types that can have contracts (later sources add theirs, e.g. ``cdc``).
#: ``export``: the rows of a batch export entity (``insightloop.exports.contract``).
KINDS = ("track", "identify", "group", "page", "screen", "export")
#: An export contract's own keys: primary key, updated-at column, subject keys, file options.
EXPORT_KEY = "x-insightloop-export"
#: The name of the one traits contract of identify and of group.
TRAITS = "traits"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
VENDOR = "insightloop"
#: Where a message pins the version of its contract.
PIN_FIELD = "schema_version"


@dataclass(frozen=True)
class Contract:
    """One version of one contract, with its compiled validator."""

    kind: str
    name: str
    version: SchemaVer
    path: Path
    schema: dict[str, Any] = field(repr=False, compare=False)
    validator: jsonschema_rs.Validator = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        """``track/report_created/1-0-1``: how reports and quarantine rows name the contract."""
        return f"{self.kind}/{self.name}/{self.version}"


def snake_case(text: str) -> str:
    """The cleaned tables' ``snake_case`` (imported on first use: importing
    ``insightloop.processor.cleaned`` loads stage 2, which will import this package)."""
    global _snake_case
    if _snake_case is None:
        from insightloop.processor.cleaned.naming import snake_case as imported

        _snake_case = imported
    return _snake_case(text)


_snake_case: Callable[[str], str] | None = None


def contract_name(message_type: str, name: str | None) -> str:
    """The contract name for a message: ``traits`` for identify/group, else the snake-cased name."""
    if message_type in ("identify", "group"):
        return TRAITS
    return snake_case(name or "")


def pinned_version(context: Mapping[str, Any] | None) -> str | None:
    """The version a message pins in ``context.schema_version`` (None when it pins none)."""
    if not context:
        return None
    pin = context.get(PIN_FIELD)
    return pin if isinstance(pin, str) and pin else None


def compile_schema(schema: Mapping[str, Any]) -> jsonschema_rs.Validator:
    """The validator of a contract's schema; formats (``date-time``, ``email`` …) are asserted."""
    return jsonschema_rs.validator_for(dict(schema), validate_formats=True)


class Registry:
    """Contracts by (kind, name), each name's versions in order."""

    def __init__(self, contracts: list[Contract]) -> None:
        self._by_name: dict[tuple[str, str], list[Contract]] = {}
        for contract in sorted(contracts, key=lambda c: (c.kind, c.name, c.version)):
            self._by_name.setdefault((contract.kind, contract.name), []).append(contract)

    @classmethod
    def load(cls, directory: Path | str) -> Registry:
        """Load and compile every contract under ``directory``; ``ContractError`` naming a bad file."""
        return cls(load_contracts(Path(directory)))

    def __iter__(self) -> Iterator[Contract]:
        for versions in self._by_name.values():
            yield from versions

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_name.values())

    def versions(self, kind: str, name: str) -> list[Contract]:
        """Every version of a contract, oldest first (empty when there is none)."""
        return list(self._by_name.get((kind, snake_case(name)), ()))

    def lookup(self, kind: str, name: str, version: str | None = None) -> Contract | None:
        """The contract for ``kind``/``name``: the latest, or the pinned ``version``.

        ``version`` is a full SchemaVer (``"1-0-1"``) or a model alone (``"1"``: the latest
        ``1-*-*``). None when there is no such contract or version (an unparseable pin too).
        """
        versions = self._by_name.get((kind, snake_case(name)))
        if not versions:
            return None
        if version is None:
            return versions[-1]
        if version.isdigit():
            model = int(version)
            matching = [c for c in versions if c.version.model == model]
            return matching[-1] if matching else None
        try:
            wanted = SchemaVer.parse(version)
        except SchemaVerError:
            return None
        return next((c for c in versions if c.version == wanted), None)

    def for_message(
        self, message_type: str, name: str | None, context: Mapping[str, Any] | None = None
    ) -> Contract | None:
        """The contract for a Segment message (its type, event/page name and decoded context)."""
        return self.lookup(message_type, contract_name(message_type, name), pinned_version(context))


def load_contracts(directory: Path) -> list[Contract]:
    if not directory.is_dir():
        raise ContractError(f"contracts folder {directory} does not exist")
    contracts = []
    for path in sorted(directory.rglob("*.json")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        contracts.append(load_contract(path, relative))
    return contracts


def load_contract(path: Path, relative: Path) -> Contract:
    """One contract file at ``relative`` (``<kind>/<name>/<version>.json``) under the folder."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContractError(f"{path}: cannot read: {exc}") from exc
    return parse_contract(data, relative, shown=path)


def parse_contract(data: bytes, relative: Path, shown: Path | str | None = None) -> Contract:
    """A contract from its bytes and its path inside the folder (``shown`` names it in errors)."""
    where = str(shown or relative)
    kind, name, version = _parse_path(relative, where)
    try:
        schema = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise ContractError(f"{where}: a contract must be a JSON object (a JSON Schema)")
    _check_header(schema, kind, name, version, where)
    try:
        jsonschema_rs.meta.validate(schema)
        validator = compile_schema(schema)
    except (jsonschema_rs.ValidationError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContractError(f"{where}: not a valid JSON Schema: {first}") from exc
    return Contract(kind, name, version, Path(shown) if shown else relative, schema, validator)


def _parse_path(relative: Path, where: str) -> tuple[str, str, SchemaVer]:
    parts = relative.parts
    if len(parts) != 3:
        raise ContractError(f"{where}: contracts live at <kind>/<name>/<MODEL-REVISION-ADDITION>.json")
    kind, name, file = parts
    if kind not in KINDS:
        raise ContractError(f"{where}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    if not name or snake_case(name) != name:
        raise ContractError(f"{where}: contract name {name!r} is not snake_case (use {snake_case(name)!r})")
    if kind in ("identify", "group") and name != TRAITS:
        raise ContractError(f"{where}: {kind} has one contract, named {TRAITS!r}")
    try:
        version = SchemaVer.parse(file.removesuffix(".json"))
    except SchemaVerError as exc:
        raise ContractError(f"{where}: {exc}") from exc
    return kind, name, version


def _check_header(schema: dict[str, Any], kind: str, name: str, version: SchemaVer, where: str) -> None:
    if schema.get("$schema") != DRAFT:
        raise ContractError(f"{where}: `$schema` must be {DRAFT!r} (JSON Schema draft 2020-12)")
    me = schema.get("self")
    if not isinstance(me, dict):
        raise ContractError(f"{where}: no `self` block (vendor, name, format, version)")
    expected = {"vendor": VENDOR, "name": name, "format": "jsonschema", "version": str(version)}
    for key, value in expected.items():
        if me.get(key) != value:
            raise ContractError(
                f"{where}: `self.{key}` is {me.get(key)!r} but the file's path says {value!r}"
            )
    if schema.get("type") != "object":
        raise ContractError(f"{where}: a {kind} contract describes an object: `type` must be 'object'")
    if kind == "export":
        _check_export(schema, where)


def _check_export(schema: dict[str, Any], where: str) -> None:
    """An export contract names its primary key (and its updated-at column, subject keys,
    required columns) among its ``properties``."""
    extra = schema.get(EXPORT_KEY)
    properties = schema.get("properties")
    if not isinstance(extra, dict) or not isinstance(properties, dict):
        raise ContractError(f"{where}: an export contract needs `properties` and `{EXPORT_KEY}`")
    key = extra.get("primary_key")
    named: list[Any] = list(key) if isinstance(key, list) else []
    if not named:
        raise ContractError(f"{where}: `{EXPORT_KEY}.primary_key` must be a non-empty list of columns")
    updated = extra.get("updated_at")
    if updated is not None:
        named.append(updated)
    subjects = extra.get("subject_keys", {})
    if not isinstance(subjects, dict):
        raise ContractError(f"{where}: `{EXPORT_KEY}.subject_keys` must map a subject key to a column")
    named.extend(subjects.values())
    named.extend(schema.get("required", []))
    for column in named:
        if column not in properties:
            raise ContractError(f"{where}: `{EXPORT_KEY}` names {column!r}, which is not in `properties`")
