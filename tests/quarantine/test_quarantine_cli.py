"""``insightloop quarantine list|show`` over rows the real pipeline quarantined."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from insightloop.config import Config

runner = CliRunner()


def invoke(*args: str) -> str:
    from insightloop.cli.main import app

    result = runner.invoke(app, ["quarantine", *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_list_groups_newest_first_with_totals(lake: Config) -> None:
    data = json.loads(invoke("list", "--json"))
    assert data["total"] == 5
    groups = [(g["source"], g["kind"], g["contract"], g["rows"]) for g in data["groups"]]
    # Received half an hour ago (backend), three hours ago (the refused body), two days ago (web).
    assert {g[:3] for g in groups[:3]} == {
        ("backend", "contract_violation", "track/dashboard_viewed/1-0-0"),
        ("backend", "contract_violation", "track/invite_sent/2-0-0"),
        ("backend", "missing_field", None),
    }
    assert groups[3:] == [
        ("web", "malformed_json", None, 1),
        ("web", "contract_violation", "track/report_created/1-0-1", 1),
    ]
    drift = data["groups"][4]
    assert drift["reason"] == "broke /colour additionalProperties"
    assert drift["last_received"] == "2026-10-31T12:00:00+00:00"


def test_list_for_people(lake: Config) -> None:
    out = invoke("list", "--kind", "contract_violation")
    assert "track/dashboard_viewed/1-0-0" in out
    assert "missing_field" not in out
    assert "3 quarantined rows in 3 groups" in out


def test_show_every_violation_and_the_payload(lake: Config) -> None:
    out = invoke("show", "--event-id", "dv-bad")
    assert "contract    track/dashboard_viewed/1-0-0" in out
    assert "/dashboard_name  [required]" in out
    assert '/widgets  [type]  "12" is not of type "integer"' in out
    assert "received    2026-11-02T11:30:00+00:00" in out
    assert '      "widgets": "12"' in out  # the payload, pretty-printed
    assert "1 of 1 quarantined row" in out


def test_show_a_payload_that_is_not_json_escaped(lake: Config) -> None:
    out = invoke("show", "--kind", "malformed_json")
    assert '  \\xff{"batch": nope' in out


def test_show_limit_and_json(lake: Config) -> None:
    data = json.loads(invoke("show", "--contract", "track", "--limit", "2", "--json"))
    assert data["total"] == 3
    assert [row["event_id"] for row in data["rows"]] == ["inv-bad", "dv-bad"]  # newest first, then raw order
    row = data["rows"][0]
    assert row["violations"] == [
        {"pointer": "/role", "keyword": "enum", "message": row["violations"][0]["message"]}
    ]
    assert row["payload"]["properties"]["role"] == "owner"
    text = invoke("show", "--contract", "track", "-n", "2")
    assert "2 of 3 quarantined rows (the newest 2; --limit N for more)" in text


def test_nothing_in_quarantine(config: Config) -> None:
    assert invoke("list").strip() == "nothing in quarantine"
    assert invoke("show").strip() == "nothing in quarantine"
    assert json.loads(invoke("list", "--json"))["total"] == 0


def test_nothing_matches(lake: Config) -> None:
    assert invoke("show", "--source", "ios").strip() == "nothing in quarantine matches: source ios"


def test_bad_options_exit_2_with_one_line(lake: Config) -> None:
    from insightloop.cli.main import app

    result = runner.invoke(app, ["quarantine", "list", "--kind", "nope"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --kind: unknown failure kind 'nope'")
    result = runner.invoke(app, ["quarantine", "show", "--since", "last week"])
    assert result.exit_code == 2
    assert "--since" in result.stderr and "Traceback" not in result.output
