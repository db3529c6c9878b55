"""``openmwaa iam ...`` on a data directory, through ``main`` (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.cli.cli_support import run_cli

ACCOUNT = "123456789012"
ENV = f"arn:aws:airflow:us-east-1:{ACCOUNT}:environment"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(__import__("os").environ):
        if name.startswith("OPENMWAA_"):
            monkeypatch.delenv(name)
    return tmp_path / "data"


def write_policy(tmp_path: Path, *statements: dict[str, object]) -> Path:
    path = tmp_path / f"policy-{len(list(tmp_path.glob('policy-*')))}.json"
    path.write_text(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    return path


def test_add_user_key_and_policy(data_dir: Path, tmp_path: Path) -> None:
    code, out, err = run_cli(data_dir, "iam", "add-user", "carol")
    assert (code, out.strip(), err) == (0, f"arn:aws:iam::{ACCOUNT}:user/carol", "")

    code, out, _ = run_cli(data_dir, "iam", "create-access-key", "carol")
    assert code == 0
    fields = dict(line.split(None, 1) for line in out.splitlines())
    key_id, secret = fields["AccessKeyId"], fields["SecretAccessKey"].split()[0]
    assert key_id.startswith("AKIA") and len(key_id) == 20
    assert len(secret) == 40

    policy = write_policy(
        tmp_path,
        {"Sid": "ReadOne", "Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": f"{ENV}/a"},
    )
    assert run_cli(data_dir, "iam", "put-user-policy", "carol", "read", str(policy))[0] == 0

    code, out, _ = run_cli(data_dir, "iam", "list")
    listing = json.loads(out)
    (carol,) = [u for u in listing["users"] if u["name"] == "carol"]
    assert carol["access_keys"] == [{"id": key_id, "active": True}]
    assert carol["policies"] == ["user/carol/read"]
    # The secret is shown once and stored encrypted: neither the listing nor the file holds it.
    assert secret not in out
    assert secret not in (data_dir / "iam.yaml").read_text()


def test_put_user_policy_from_stdin(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    run_cli(data_dir, "iam", "add-user", "dave")
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "airflow:*", "Resource": "*"}],
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(document)))
    assert run_cli(data_dir, "iam", "put-user-policy", "dave", "all", "-")[0] == 0
    code, out, _ = run_cli(
        data_dir,
        "iam",
        "simulate",
        "--principal",
        "user/dave",
        "--action",
        "airflow:DeleteEnvironment",
        "--resource",
        f"{ENV}/x",
    )
    assert code == 0 and "Decision:   allowed" in out


@pytest.fixture
def carol(data_dir: Path, tmp_path: Path) -> Path:
    run_cli(data_dir, "iam", "add-user", "carol")
    policy = write_policy(
        tmp_path,
        {
            "Sid": "ReadTeam",
            "Effect": "Allow",
            "Action": "airflow:GetEnvironment",
            "Resource": f"{ENV}/team-*",
        },
        {"Sid": "NotProd", "Effect": "Deny", "Action": "airflow:*", "Resource": f"{ENV}/team-prod"},
        {
            "Sid": "FromOffice",
            "Effect": "Allow",
            "Action": "airflow:ListEnvironments",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.1.0.0/16"}},
        },
    )
    assert run_cli(data_dir, "iam", "put-user-policy", "carol", "team", str(policy))[0] == 0
    return data_dir


def simulate(data_dir: Path, action: str, resource: str, *context: str) -> tuple[int, str, str]:
    extra = [arg for item in context for arg in ("--context", item)]
    return run_cli(
        data_dir,
        "iam",
        "simulate",
        "--principal",
        "user/carol",
        "--action",
        action,
        "--resource",
        resource,
        *extra,
    )


def test_simulate_allowed_names_the_statement(carol: Path) -> None:
    code, out, _ = simulate(carol, "airflow:GetEnvironment", f"{ENV}/team-dev")
    assert code == 0
    assert "Decision:   allowed" in out
    assert "statement 0 ReadTeam (Allow)" in out
    assert "Message:" not in out


def test_simulate_implicit_deny(carol: Path) -> None:
    code, out, _ = simulate(carol, "airflow:DeleteEnvironment", f"{ENV}/team-dev")
    assert code == 1
    assert "Decision:   implicitDeny" in out
    assert (
        f"User: arn:aws:iam::{ACCOUNT}:user/carol is not authorized to perform: airflow:DeleteEnvironment "
        f"on resource: {ENV}/team-dev because no identity-based policy allows the "
        "airflow:DeleteEnvironment action"
    ) in out


def test_simulate_explicit_deny_names_the_deny(carol: Path) -> None:
    code, out, _ = simulate(carol, "airflow:GetEnvironment", f"{ENV}/team-prod")
    assert code == 1
    assert "Decision:   explicitDeny" in out
    assert "NotProd (Deny)" in out
    assert "with an explicit deny in an identity-based policy" in out


def test_simulate_with_condition_context(carol: Path) -> None:
    assert simulate(carol, "airflow:ListEnvironments", "*", "aws:SourceIp=10.1.2.3")[0] == 0
    assert simulate(carol, "airflow:ListEnvironments", "*", "aws:SourceIp=192.0.2.1")[0] == 1
    assert simulate(carol, "airflow:ListEnvironments", "*")[0] == 1  # no source address: deny on doubt


@pytest.mark.parametrize(
    ("args", "wording"),
    [
        (("iam", "add-user", "carol"), "already exists"),
        (("iam", "create-access-key", "nobody-here"), "does not exist"),
        (
            ("iam", "simulate", "--principal", "user/ghost", "--action", "a:b", "--resource", "*"),
            "no such principal",
        ),
        (("iam", "simulate", "--principal", "carol", "--action", "a:b", "--resource", "*"), "user/NAME"),
        (
            (
                "iam",
                "simulate",
                "--principal",
                "user/carol",
                "--action",
                "a:b",
                "--resource",
                "*",
                "--context",
                "x",
            ),
            "KEY=VALUE",
        ),
    ],
)
def test_errors_say_what_is_wrong(carol: Path, args: tuple[str, ...], wording: str) -> None:
    before = (carol / "iam.yaml").read_bytes()
    code, _, err = run_cli(carol, *args)
    assert code == 2
    assert err.startswith("openmwaa: ") and wording in err
    assert "Traceback" not in err
    assert (carol / "iam.yaml").read_bytes() == before


def test_an_invalid_policy_leaves_the_file_as_it_was(carol: Path, tmp_path: Path) -> None:
    before = (carol / "iam.yaml").read_bytes()
    bad = tmp_path / "bad.json"
    for text in ("{not json", json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]})):
        bad.write_text(text)
        code, _, err = run_cli(carol, "iam", "put-user-policy", "carol", "bad", str(bad))
        assert code == 2 and err.startswith("openmwaa: ")
        assert (carol / "iam.yaml").read_bytes() == before


def test_create_role_and_role_policy(data_dir: Path, tmp_path: Path) -> None:
    trust = tmp_path / "trust.json"
    trust.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        )
    )
    code, out, _ = run_cli(data_dir, "iam", "create-role", "Deployer", str(trust))
    assert (code, out.strip()) == (0, f"arn:aws:iam::{ACCOUNT}:role/Deployer")
    policy = write_policy(
        tmp_path, {"Effect": "Allow", "Action": "airflow:UpdateEnvironment", "Resource": "*"}
    )
    assert run_cli(data_dir, "iam", "put-role-policy", "Deployer", "deploy", str(policy))[0] == 0
    code, out, _ = run_cli(
        data_dir,
        "iam",
        "simulate",
        "--principal",
        "role/Deployer",
        "--action",
        "airflow:UpdateEnvironment",
        "--resource",
        f"{ENV}/x",
    )
    assert code == 0 and f"Principal:  arn:aws:iam::{ACCOUNT}:role/Deployer" in out
