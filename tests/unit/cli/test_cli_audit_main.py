"""``openmwaa audit`` over a written audit trail, and the top-level command's help and errors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from openmwaa.cli.audit import PAGE_SIZE
from openmwaa.cli.main import build_parser
from openmwaa.cli.up import overrides
from openmwaa.settings import Settings
from openmwaa.store.audit import AuditEntry, AuditLog
from openmwaa.store.db import open_engine
from tests.unit.cli.cli_support import run_cli

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
ENV = "arn:aws:airflow:us-east-1:123456789012:environment/e1"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("OPENMWAA_"):
            monkeypatch.delenv(name)
    path = tmp_path / "data"
    path.mkdir()
    return path


def entry(
    principal: str | None, action: str, decision: str | None, status: int, error: str | None
) -> AuditEntry:
    return AuditEntry(
        time=time.time(),
        request_id=f"req-{principal}-{action}-{status}",
        principal_arn=principal,
        source_ip="127.0.0.1",
        action=action,
        resource=ENV if principal else None,
        decision=decision,
        deciding_statement="user/alice/all#0" if decision == "Allow" else None,
        status=status,
        error_code=error,
    )


def write(data_dir: Path, entries: list[AuditEntry]) -> None:
    log = AuditLog(open_engine(Settings(data_dir=data_dir).state_database_url))
    log.start()
    for item in entries:
        log.append(item)
    log.stop()


@pytest.fixture
def trail(data_dir: Path) -> Path:
    write(
        data_dir,
        [
            entry(ALICE, "airflow:GetEnvironment", "Allow", 200, None),
            entry(BOB, "airflow:DeleteEnvironment", "ImplicitDeny", 403, "AccessDeniedException"),
            entry(None, "airflow:ListEnvironments", None, 403, "MissingAuthenticationTokenException"),
        ],
    )
    return data_dir


def test_audit_json_lines(trail: Path) -> None:
    code, out, _ = run_cli(trail, "audit", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["principal_arn"], r["action"], r["decision"], r["status"], r["error_code"]) for r in rows] == [
        (ALICE, "airflow:GetEnvironment", "Allow", 200, None),
        (BOB, "airflow:DeleteEnvironment", "ImplicitDeny", 403, "AccessDeniedException"),
        (None, "airflow:ListEnvironments", None, 403, "MissingAuthenticationTokenException"),
    ]
    assert rows[0]["resource"] == ENV and rows[0]["deciding_statement"] == "user/alice/all#0"
    assert set(rows[0]) == {
        "time",
        "request_id",
        "principal_arn",
        "source_ip",
        "action",
        "resource",
        "decision",
        "deciding_statement",
        "status",
        "error_code",
        "policy_errors",
    }


def test_audit_table_and_filters(trail: Path) -> None:
    code, out, _ = run_cli(trail, "audit")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert ALICE in lines[0] and "Allow" in lines[0] and "200" in lines[0]
    assert lines[2].split("  ")[2] == "-"  # no principal: unauthenticated
    _, out, _ = run_cli(trail, "audit", "--decision", "ImplicitDeny")
    assert len(out.splitlines()) == 1 and BOB in out
    _, out, _ = run_cli(trail, "audit", "--principal", ALICE, "--json")
    assert [json.loads(line)["principal_arn"] for line in out.splitlines()] == [ALICE]
    _, out, _ = run_cli(trail, "audit", "--action", "airflow:ListEnvironments", "--json")
    assert len(out.splitlines()) == 1
    _, out, _ = run_cli(trail, "audit", "--since", "3600")
    assert len(out.splitlines()) == 3


def test_audit_prints_the_whole_trail_past_one_page(data_dir: Path) -> None:
    count = PAGE_SIZE * 2 + 7
    write(
        data_dir,
        [entry(ALICE, "airflow:GetEnvironment", "Allow", 200, None)] * (count - 1)
        + [entry(BOB, "airflow:GetEnvironment", "Allow", 200, None)],
    )
    code, out, _ = run_cli(data_dir, "audit", "--json")
    lines = out.splitlines()
    assert code == 0 and len(lines) == count
    assert json.loads(lines[-1])["principal_arn"] == BOB  # the newest call is not cut off


def test_audit_rejects_an_unknown_decision(trail: Path) -> None:
    code, _, err = run_cli(trail, "audit", "--decision", "Maybe")
    assert code == 2 and "invalid choice" in err


def test_help_explains_the_commands() -> None:
    code, out, _ = run_cli(None, "--help")
    assert code == 0
    for words in ("openmwaa up", "openmwaa env list", "openmwaa iam simulate", "openmwaa audit", "OPENMWAA_"):
        assert words in out
    for command in ("iam", "env", "audit", "up"):
        code, out, _ = run_cli(None, command, "--help")
        assert code == 0 and out.startswith("usage: openmwaa")


def test_no_command_prints_help_and_fails() -> None:
    code, out, _ = run_cli(None)
    assert code == 2 and "usage: openmwaa" in out


def test_a_bad_setting_is_a_message_not_a_traceback(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENMWAA_ACCOUNT_ID", "12")
    code, _, err = run_cli(data_dir, "iam", "list")
    assert code == 2
    assert err.startswith("openmwaa: account id must be 12 digits")


def test_env_list_explains_client_side_failures(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials, or no service on the port: one line saying what to do, not a traceback."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(data_dir / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(data_dir / "none"))
    monkeypatch.setenv("OPENMWAA_PORT", "9")  # discard: nothing listens there
    code, _, err = run_cli(data_dir, "env", "list")
    assert code == 2
    assert err.startswith("openmwaa: no credentials") and "openmwaa up" in err
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x" * 40)
    code, _, err = run_cli(data_dir, "env", "list")
    assert code == 2
    assert err.startswith("openmwaa: nothing answers at http://127.0.0.1:9")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--data-dir", "/d/before", "up", "--port", "9"], "/d/before"),
        (["up", "--data-dir", "/d/after", "--port", "9"], "/d/after"),
        (["--data-dir", "/d/before", "up", "--data-dir", "/d/after"], "/d/after"),
        (["audit", "--data-dir", "/d/audit"], "/d/audit"),
        (["up"], None),
    ],
)
def test_the_data_directory_may_be_given_before_or_after_the_command(
    argv: list[str], expected: str | None
) -> None:
    args = build_parser().parse_args(argv)
    assert overrides(args).get("data_dir") == (Path(expected) if expected else None)
