"""The audit trail and the ``openmwaa`` command line against the running server of the e2e session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.iam_admin import IdentitiesEditor
from openmwaa.store.audit import AuditLog
from openmwaa.store.db import open_engine
from tests.e2e.conftest import SECRET_KEY, OpenMwaaServer, wait_until_known
from tests.e2e.test_iam import ACCOUNT, ENV_ARN, ROLE_ARN, Key, add_user, as_user

pytestmark = pytest.mark.e2e

USER = "audit-e2e-user"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/{USER}"
#: A value sent only inside an InvokeRestApi Body: it must not show up in the trail or the log.
BODY_MARKER = "body-marker-7f3c9e1d-do-not-log"


def openmwaa(
    server: OpenMwaaServer, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m openmwaa --data-dir <server's> ARGS`` as a user would run it next to the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENMWAA_"))}
    env["OPENMWAA_PORT"] = str(server.port)
    return subprocess.run(
        [sys.executable, "-m", "openmwaa", "--data-dir", str(server.data_dir), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def audited_user(server: OpenMwaaServer, af3_env: str) -> Iterator[Key]:
    editor = IdentitiesEditor(
        server.data_dir / "iam.yaml", account_id=ACCOUNT, box=SecretBox.open(server.data_dir)
    )
    key = add_user(
        editor,
        USER,
        {
            "Sid": "ReadShared",
            "Effect": "Allow",
            "Action": "airflow:GetEnvironment",
            "Resource": ENV_ARN + af3_env,
        },
        {
            "Sid": "AsViewer",
            "Effect": "Allow",
            "Action": "airflow:InvokeRestApi",
            "Resource": f"{ROLE_ARN}{af3_env}/Viewer",
        },
    )
    wait_until_known(server, key.access_key_id, key.secret_access_key)
    yield key


def request_id(error_or_response: Any) -> str:
    response = error_or_response.response if isinstance(error_or_response, ClientError) else error_or_response
    return str(response["ResponseMetadata"]["RequestId"])


@pytest.fixture(scope="module")
def calls(server: OpenMwaaServer, af3_env: str, audited_user: Key) -> dict[str, str]:
    """Allowed and denied calls; their request ids by name."""
    mwaa = as_user(server, audited_user)
    ids = {"allowed": request_id(mwaa.get_environment(Name=af3_env))}
    try:
        mwaa.delete_environment(Name=af3_env)
    except mwaa.exceptions.AccessDeniedException as exc:
        ids["denied"] = request_id(exc)
    try:  # IAM allows the Viewer role; Airflow's RBAC refuses a Viewer creating a variable
        mwaa.invoke_rest_api(
            Name=af3_env, Path="/variables", Method="POST", Body={"key": "audit-probe", "value": BODY_MARKER}
        )
    except mwaa.exceptions.RestApiClientException as exc:
        ids["invoke"] = request_id(exc)
    unsigned = requests.get(f"{server.endpoint_url}/environments", timeout=10)
    ids["unsigned"] = unsigned.headers["x-amzn-RequestId"]
    assert set(ids) == {"allowed", "denied", "invoke", "unsigned"}
    wait_for_audit(server, set(ids.values()))
    return ids


def audit_rows(server: OpenMwaaServer, *args: str) -> list[dict[str, Any]]:
    done = openmwaa(server, "audit", "--json", *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def wait_for_audit(server: OpenMwaaServer, request_ids: set[str]) -> None:
    """The server writes the trail in batches (every 0.2 s): wait until these calls are in it."""
    log = AuditLog(open_engine(f"sqlite:///{server.data_dir / 'openmwaa.db'}"))
    deadline = time.monotonic() + 10
    while not request_ids <= {
        entry.request_id for _, entry in log.query(since=time.time() - 600, limit=100_000)
    }:
        if time.monotonic() > deadline:
            raise AssertionError(f"calls {request_ids} did not reach the audit trail")
        time.sleep(0.2)


def test_audit_lists_allowed_and_denied_calls(
    server: OpenMwaaServer, af3_env: str, audited_user: Key, calls: dict[str, str]
) -> None:
    done = openmwaa(server, "audit", "--json")
    assert done.returncode == 0, done.stderr
    raw = done.stdout
    rows = {row["request_id"]: row for row in map(json.loads, raw.splitlines())}
    allowed, denied = rows[calls["allowed"]], rows[calls["denied"]]
    assert (allowed["principal_arn"], allowed["action"], allowed["resource"]) == (
        USER_ARN,
        "airflow:GetEnvironment",
        ENV_ARN + af3_env,
    )
    assert (allowed["decision"], allowed["status"], allowed["error_code"]) == ("Allow", 200, None)
    assert "ReadShared" in (allowed["deciding_statement"] or "") or allowed["deciding_statement"]
    assert (denied["principal_arn"], denied["action"], denied["resource"]) == (
        USER_ARN,
        "airflow:DeleteEnvironment",
        ENV_ARN + af3_env,
    )
    assert (denied["decision"], denied["status"], denied["error_code"]) == (
        "ImplicitDeny",
        403,
        "AccessDeniedException",
    )
    invoke = rows[calls["invoke"]]
    assert (invoke["action"], invoke["resource"], invoke["decision"]) == (
        "airflow:InvokeRestApi",
        f"{ROLE_ARN}{af3_env}/Viewer",
        "Allow",
    )
    assert (invoke["status"], invoke["error_code"]) == (400, "RestApiClientException")
    unsigned = rows[calls["unsigned"]]
    assert unsigned["principal_arn"] is None
    assert (unsigned["status"], unsigned["error_code"]) == (403, "MissingAuthenticationTokenException")
    # Never a secret, never a body.
    for secret in (audited_user.secret_access_key, SECRET_KEY, BODY_MARKER):
        assert secret not in raw
    assert BODY_MARKER not in server.log_path.read_text(errors="replace")
    assert audited_user.secret_access_key not in server.log_path.read_text(errors="replace")


def test_audit_filters(server: OpenMwaaServer, calls: dict[str, str]) -> None:
    denied = audit_rows(server, "--principal", USER_ARN, "--decision", "ImplicitDeny")
    assert [row["request_id"] for row in denied] == [calls["denied"]]
    table = openmwaa(server, "audit", "--principal", USER_ARN, "--action", "airflow:GetEnvironment")
    assert table.returncode == 0
    assert calls["allowed"][:8] in table.stdout and "Allow" in table.stdout


def test_iam_simulate(server: OpenMwaaServer, af3_env: str, audited_user: Key) -> None:
    allowed = openmwaa(
        server,
        "iam",
        "simulate",
        "--principal",
        f"user/{USER}",
        "--action",
        "airflow:GetEnvironment",
        "--resource",
        ENV_ARN + af3_env,
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "Decision:   allowed" in allowed.stdout and "ReadShared (Allow)" in allowed.stdout
    denied = openmwaa(
        server,
        "iam",
        "simulate",
        "--principal",
        f"user/{USER}",
        "--action",
        "airflow:InvokeRestApi",
        "--resource",
        f"{ROLE_ARN}{af3_env}/Admin",
    )
    assert denied.returncode == 1
    assert "Decision:   implicitDeny" in denied.stdout
    assert f"User: {USER_ARN} is not authorized to perform: airflow:InvokeRestApi" in denied.stdout


def test_iam_commands_reach_the_running_server(server: OpenMwaaServer, af3_env: str) -> None:
    name = "cli-e2e-user"
    done = openmwaa(server, "iam", "add-user", name)
    assert done.returncode == 0, done.stderr
    done = openmwaa(server, "iam", "create-access-key", name)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(None, 1) for line in done.stdout.splitlines())
    key = Key(fields["AccessKeyId"], fields["SecretAccessKey"].split()[0])
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "airflow:ListEnvironments", "Resource": "*"}],
    }
    written = time.monotonic()
    wait_until_known(server, key.access_key_id, key.secret_access_key)
    mwaa = as_user(server, key)
    with pytest.raises(mwaa.exceptions.AccessDeniedException):
        mwaa.list_environments()
    done = openmwaa(server, "iam", "put-user-policy", name, "list", "-", stdin=json.dumps(policy))
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while True:
        try:
            assert af3_env in mwaa.list_environments()["Environments"]
            break
        except mwaa.exceptions.AccessDeniedException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert time.monotonic() - written < 15
    with pytest.raises(mwaa.exceptions.AccessDeniedException):
        mwaa.get_environment(Name=af3_env)


def test_help_and_env_list(server: OpenMwaaServer, af3_env: str) -> None:
    done = openmwaa(server, "--help")
    assert done.returncode == 0 and "openmwaa env list" in done.stdout
    # env list talks to the running server with the bootstrap credentials of the data directory.
    assert (server.data_dir / "credentials").exists()
    done = openmwaa(server, "env", "list")
    assert done.returncode == 0, done.stderr
    assert f"{af3_env}\tAVAILABLE" in done.stdout.splitlines()
    done = openmwaa(server, "env", "describe", af3_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Arn"] == ENV_ARN + af3_env
    done = openmwaa(server, "env", "describe", "no-such-environment")
    assert done.returncode == 2
    assert done.stderr.startswith("openmwaa: ResourceNotFoundException")
    assert Path(server.data_dir / "credentials").read_text().count("aws_access_key_id") == 2
