"""``contracts check``: the working tree's contracts against a base revision (default HEAD).

A published version never changes, so, per file:

- same version, changed content (compared as JSON, so reformatting is fine): always an error;
- a version removed: an error (events pinned to it would lose their contract);
- a new version: compared with the version before it; an error when the bump is smaller than
  the change (see ``compat``), e.g. a type change with ``1-0-0`` → ``1-0-1`` needs ``2-0-0``;
- a new contract: fine.

With ``every_version`` (``--all-versions``, what ``make test`` and so CI run) each version
already published is also compared with the version before it, so a clean checkout still
proves the whole ladder of versions follows the rules, not only what changed since ``base``.

Git is run as a subprocess (``git ls-tree`` / ``git show``) in the contracts folder.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec
import orjson

from insightloop.contracts.compat import bump_error, compare
from insightloop.contracts.errors import GitError
from insightloop.contracts.registry import Contract, load_contracts


class Finding(msgspec.Struct, frozen=True):
    """What ``check`` says about one file; ``ok`` False fails the check."""

    path: str
    ok: bool
    message: str

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'ERROR'}  {self.path}: {self.message}"


@dataclass
class CheckReport:
    base: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(not f.ok for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]


def check_contracts(directory: Path | str, base: str = "HEAD", every_version: bool = False) -> CheckReport:
    """Compare the contracts in ``directory`` with those at git revision ``base`` (and, with
    ``every_version``, each published version with the one before it).

    ``ContractError`` (a bad file in the working tree) and ``GitError`` are raised; every
    finding about a change is returned in the report.
    """
    directory = Path(directory)
    current = {_key(c.path.relative_to(directory)): c for c in load_contracts(directory)}
    published = _base_files(directory, base)
    report = CheckReport(base)

    def shown(relative: str) -> str:
        return str(directory / relative)

    for relative in sorted(published.keys() - current.keys()):
        report.findings.append(
            Finding(
                shown(relative),
                False,
                f"removed, but it was published at {base}: events pinned to it would lose their "
                "contract. Restore it; supersede it with a newer version instead.",
            )
        )
    for relative in sorted(published.keys() & current.keys()):
        contract, before = current[relative], published[relative]
        if before == contract.schema:
            if every_version:
                report.findings.append(_new_version(shown(relative), contract, current))
            continue
        report.findings.append(Finding(shown(relative), False, _edited_in_place(contract, before, current)))
    for relative in sorted(current.keys() - published.keys()):
        report.findings.append(_new_version(shown(relative), current[relative], current))
    return report


def _edited_in_place(contract: Contract, before: Any, current: dict[str, Contract]) -> str:
    message = (
        f"edited in place: version {contract.version} changed since it was published. A published "
        "version never changes: restore it and write the change as a new version"
    )
    if isinstance(before, dict):
        comparison = compare(before, contract.schema)
        latest = max(
            c.version for c in current.values() if (c.kind, c.name) == (contract.kind, contract.name)
        )
        if comparison.changes:
            reasons = "; ".join(str(c) for c in comparison.changes)
            message += (
                f" (a {comparison.level.name} change: at least {latest.next(comparison.level)}): {reasons}"
            )
    return message


def _new_version(path: str, contract: Contract, current: dict[str, Contract]) -> Finding:
    earlier = [
        c
        for c in current.values()
        if (c.kind, c.name) == (contract.kind, contract.name) and c.version < contract.version
    ]
    if not earlier:
        return Finding(path, True, f"new contract {contract.kind}/{contract.name}")
    previous = max(earlier, key=lambda c: c.version)
    comparison = compare(previous.schema, contract.schema)
    error = bump_error(previous.version, contract.version, comparison)
    if error is not None:
        return Finding(path, False, error)
    level = comparison.level.name
    article = "an" if level[0] in "AEIOU" else "a"
    reasons = "; ".join(str(c) for c in comparison.changes) or "no rule changed"
    return Finding(
        path, True, f"{previous.version} → {contract.version}, {article} {level} change: {reasons}"
    )


def _key(relative: Path | PurePosixPath) -> str:
    return PurePosixPath(*relative.parts).as_posix()


def _git(directory: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=directory, capture_output=True, check=False)
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from exc
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(
            f"git {' '.join(args)} failed in {directory}: {detail[-1] if detail else done.returncode}"
        )
    return done.stdout


def _base_files(directory: Path, base: str) -> dict[str, Any]:
    """Relative path → parsed JSON (None when not JSON) of every contract file at ``base``."""
    prefix = _git(directory, "rev-parse", "--show-prefix").decode().strip()
    try:
        _git(directory, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except GitError:
        raise GitError(f"git revision {base!r} not found (from {directory})") from None
    listing = _git(directory, "ls-tree", "-r", "-z", "--full-name", "--name-only", base, "--", ".")
    out: dict[str, Any] = {}
    for full in filter(None, listing.decode().split("\0")):
        relative = full[len(prefix) :] if full.startswith(prefix) else full
        parts = PurePosixPath(relative).parts
        if not relative.endswith(".json") or len(parts) != 3 or any(p.startswith(".") for p in parts):
            continue
        data = _git(directory, "show", f"{base}:{full}")
        try:
            out[relative] = orjson.loads(data)
        except orjson.JSONDecodeError:
            out[relative] = None
    return out
