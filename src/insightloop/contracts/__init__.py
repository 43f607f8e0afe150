"""insightloop.contracts: event contracts as JSON Schema files, versioned with SchemaVer.

Modules, each one idea: ``schemaver`` (versions and bump levels), ``registry`` (the
contracts folder loaded and compiled; lookup latest or pinned), ``validate`` (events →
OK or violations), ``compat`` (how big a change between two versions is), ``check`` (the
working tree against a git revision, for CI), ``infer`` (contracts proposed from samples),
``policy`` (enforce/warn/off and what to do without a contract). The CLI is
``insightloop.cli.contracts``.

The processor's calls: ``Registry.load(dir)`` once, then per event
``registry.for_message(type, event_or_name, context)`` and ``validate(contract, properties)``
(or ``validate_batch``), and ``ContractsPolicy.decide(source, kind, name)``.
"""

from insightloop.contracts.errors import ContractError, GitError, SchemaVerError
from insightloop.contracts.policy import ContractsPolicy, Decision, Mode, NoContract
from insightloop.contracts.registry import Contract, Registry, contract_name, pinned_version
from insightloop.contracts.schemaver import Level, SchemaVer
from insightloop.contracts.validate import OK, Violation, validate, validate_batch

__all__ = [
    "OK",
    "Contract",
    "ContractError",
    "ContractsPolicy",
    "Decision",
    "GitError",
    "Level",
    "Mode",
    "NoContract",
    "Registry",
    "SchemaVer",
    "SchemaVerError",
    "Violation",
    "contract_name",
    "pinned_version",
    "validate",
    "validate_batch",
]
