from __future__ import annotations

import json
from pathlib import Path

import pytest
from contracts_kit import WriteContract, git

from insightloop.contracts.check import check_contracts
from insightloop.contracts.errors import ContractError, GitError

PROPS = {
    "report_id": {"type": "string"},
    "rows": {"type": "integer", "minimum": 0},
}


@pytest.fixture
def repo(tmp_path: Path, write_contract: WriteContract) -> Path:
    """A git repository whose last commit holds contracts/track/export_downloaded/1-0-0."""
    git(tmp_path, "init", "-q", "-b", "main")
    write_contract(tmp_path / "contracts", "track", "export_downloaded", "1-0-0", PROPS, ["report_id"])
    write_contract(tmp_path / "contracts", "identify", "traits", "1-0-0", {"email": {"type": "string"}})
    git(tmp_path, "add", "contracts")
    git(tmp_path, "commit", "-q", "-m", "contracts")
    return tmp_path


def test_unchanged_contracts_pass(repo: Path) -> None:
    report = check_contracts(repo / "contracts")
    assert not report.failed
    assert report.findings == []


def test_an_in_place_edit_is_an_error(repo: Path, write_contract: WriteContract) -> None:
    write_contract(
        repo / "contracts",
        "track",
        "export_downloaded",
        "1-0-0",
        {**PROPS, "tag": {"type": "string"}},
        ["report_id"],
    )
    report = check_contracts(repo / "contracts")
    assert report.failed
    [error] = report.errors
    assert error.path.endswith("track/export_downloaded/1-0-0.json")
    assert "edited in place" in error.message and "new version" in error.message
    assert "at least 1-0-1" in error.message


def test_reformatting_a_published_file_is_not_an_edit(repo: Path) -> None:
    path = repo / "contracts" / "track" / "export_downloaded" / "1-0-0.json"
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4, sort_keys=True))
    assert not check_contracts(repo / "contracts").failed


def test_an_added_optional_property_with_an_addition_bump_passes(
    repo: Path, write_contract: WriteContract
) -> None:
    write_contract(
        repo / "contracts",
        "track",
        "export_downloaded",
        "1-0-1",
        {**PROPS, "tag": {"type": "string"}},
        ["report_id"],
    )
    report = check_contracts(repo / "contracts")
    assert not report.failed
    [finding] = report.findings
    assert finding.ok and "1-0-0 → 1-0-1, an ADDITION change" in finding.message


def test_a_type_change_with_a_minor_bump_explains_the_major_bump_needed(
    repo: Path, write_contract: WriteContract
) -> None:
    changed = {**PROPS, "rows": {"type": "string"}}
    write_contract(repo / "contracts", "track", "export_downloaded", "1-1-0", changed, ["report_id"])
    report = check_contracts(repo / "contracts")
    assert report.failed
    [error] = report.errors
    assert error.path.endswith("track/export_downloaded/1-1-0.json")
    assert "MODEL change, which needs at least 2-0-0" in error.message
    assert "/rows" in error.message and "type" in error.message


def test_the_same_type_change_as_a_new_model_passes(repo: Path, write_contract: WriteContract) -> None:
    changed = {**PROPS, "rows": {"type": "string"}}
    write_contract(repo / "contracts", "track", "export_downloaded", "2-0-0", changed, ["report_id"])
    report = check_contracts(repo / "contracts")
    assert not report.failed
    assert "a MODEL change" in report.findings[0].message


def test_a_removed_version_and_a_new_contract(repo: Path, write_contract: WriteContract) -> None:
    (repo / "contracts" / "identify" / "traits" / "1-0-0.json").unlink()
    write_contract(repo / "contracts", "group", "traits", "1-0-0", {"name": {"type": "string"}})
    report = check_contracts(repo / "contracts")
    by_path = {Path(f.path).relative_to(repo / "contracts").as_posix(): f for f in report.findings}
    assert not by_path["identify/traits/1-0-0.json"].ok
    assert "removed" in by_path["identify/traits/1-0-0.json"].message
    assert by_path["group/traits/1-0-0.json"].ok


def test_another_base_revision(repo: Path, write_contract: WriteContract) -> None:
    write_contract(
        repo / "contracts",
        "track",
        "export_downloaded",
        "1-0-1",
        {**PROPS, "tag": {"type": "string"}},
        ["report_id"],
    )
    git(repo, "add", "contracts")
    git(repo, "commit", "-q", "-m", "1-0-1")
    assert check_contracts(repo / "contracts").findings == []
    assert [f.ok for f in check_contracts(repo / "contracts", base="HEAD~1").findings] == [True]


def test_a_bad_working_tree_or_revision_is_an_error(repo: Path) -> None:
    with pytest.raises(GitError, match="nope"):
        check_contracts(repo / "contracts", base="nope")
    (repo / "contracts" / "track" / "export_downloaded" / "1-0-0.json").write_text("{")
    with pytest.raises(ContractError, match=r"1-0-0\.json: not valid JSON"):
        check_contracts(repo / "contracts")


def test_all_versions_catches_a_bad_bump_that_was_already_committed(
    repo: Path, write_contract: WriteContract
) -> None:
    # A type change published as an ADDITION: committed, so a plain check against HEAD sees nothing.
    props = {**PROPS, "rows": {"type": "string"}}
    write_contract(repo / "contracts", "track", "export_downloaded", "1-0-1", props, ["report_id"])
    git(repo, "add", "contracts")
    git(repo, "commit", "-q", "-m", "a breaking change, badly bumped")
    assert not check_contracts(repo / "contracts").failed
    report = check_contracts(repo / "contracts", every_version=True)
    [error] = report.errors
    assert error.path.endswith("track/export_downloaded/1-0-1.json")
    assert "2-0-0" in error.message
