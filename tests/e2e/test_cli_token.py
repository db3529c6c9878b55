"""CreateCliToken and the CLI endpoint, as MWAA's user guide shows them: the AWS CLI and curl.

``aws mwaa create-cli-token --name <env>`` then ``curl -X POST https://{host}/aws_mwaa/cli`` with
``Authorization: Bearer <CliToken>``, ``Content-Type: text/plain`` and the Airflow command as the
body; the answer is JSON with base64 ``stdout`` and ``stderr``. curl verifies the endpoint with
openmwaa's CA (``--cacert``).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OpenMwaaServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]

AWS = str(Path(sys.executable).with_name("aws"))


def create_cli_token(server: OpenMwaaServer, name: str) -> tuple[str, str]:
    """(CliToken, WebServerHostname) from the AWS CLI."""
    done = subprocess.run(
        [AWS, "mwaa", "create-cli-token", "--name", name, "--output", "json"],
        env=server.client_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    return out["CliToken"], out["WebServerHostname"]


def curl_cli(server: OpenMwaaServer, host: str, token: str | None, command: str) -> tuple[int, Any]:
    """POST ``command`` to the CLI endpoint with curl; (HTTP status, decoded JSON body)."""
    args = [
        "curl",
        "--silent",
        "--show-error",
        "--cacert",
        str(server.data_dir / "tls" / "ca.pem"),
        "-X",
        "POST",
        f"https://{host}/aws_mwaa/cli",
        "-H",
        "Content-Type: text/plain",
        "--data-raw",
        command,
        "--write-out",
        "\n%{http_code}",
    ]
    if token is not None:
        args += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_cli_endpoint_runs_dags_list(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    name, _major = shared_env
    token, host = create_cli_token(server, name)
    status, body = curl_cli(server, host, token, "dags list")
    assert status == 200, body
    stdout = base64.b64decode(body["stdout"]).decode()
    base64.b64decode(body["stderr"])  # present and base64, even when empty
    assert "hello_openmwaa" in stdout
    assert "on_new_signup" in stdout


def test_cli_endpoint_refuses_what_it_must(
    server: OpenMwaaServer, shared_env: tuple[str, int], af3_env: str, af2_env: str
) -> None:
    name, major = shared_env
    token, host = create_cli_token(server, name)

    for command in ("db reset", "users create --username eve --role Admin --password x", "config list"):
        status, body = curl_cli(server, host, token, command)
        assert status == 400, (command, body)
        assert "is not a supported command" in body["detail"]
        assert f"Airflow {major}" in body["detail"]
    status, body = curl_cli(server, host, token, "dags list --subdir /etc")
    assert status == 400
    assert "--subdir" in body["detail"]

    status, body = curl_cli(server, host, None, "dags list")
    assert status == 401
    assert "Bearer" in body["detail"]
    status, body = curl_cli(server, host, token[:-3] + "abc", "dags list")
    assert status == 403
    assert "not valid" in body["detail"]
    other = af2_env if name == af3_env else af3_env
    other_token, _ = create_cli_token(server, other)
    status, body = curl_cli(server, host, other_token, "version")
    assert status == 403
    assert "another environment" in body["detail"]
    web_token = server.client().create_web_login_token(Name=name)["WebToken"]
    status, body = curl_cli(server, host, web_token, "version")
    assert status == 403
