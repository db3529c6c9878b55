"""``POST /aws_mwaa/cli`` in process: CLI tokens, the command policy's answers, the run's output."""

from __future__ import annotations

import base64

import pytest

from tests.unit.webserver.webtest_support import Harness

pytestmark = pytest.mark.anyio


def _cli_token(harness: Harness, name: str) -> str:
    arn = next(r.arn for r in harness.records.records.values() if r.name == name)
    return harness.tokens.issue_cli_token(environment_arn=arn, identity="user/bob")


async def test_cli_runs_allowed_command(harness: Harness) -> None:
    token = _cli_token(harness, "af3")
    async with harness.client("af3") as client:
        response = await client.post(
            "/aws_mwaa/cli",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
            content="dags trigger my_dag --conf '{\"a\": 1}'",
        )
        refused = await client.post(
            "/aws_mwaa/cli", headers={"Authorization": f"Bearer {token}"}, content="config list"
        )
        web = await client.post(
            "/aws_mwaa/cli",
            headers={"Authorization": f"Bearer {harness.web_token('af3')}"},
            content="dags list",
        )
        missing = await client.post("/aws_mwaa/cli", content="dags list")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"stdout", "stderr"}
    assert base64.b64decode(body["stdout"]) == b'ran dags trigger my_dag --conf {"a": 1}'
    assert base64.b64decode(body["stderr"]) == b"\xffwarn"
    assert refused.status_code == 400 and "not a supported command" in refused.json()["detail"]
    assert web.status_code == 403 and missing.status_code == 401
    assert harness.runner.calls == [["dags", "trigger", "my_dag", "--conf", '{"a": 1}']]


async def test_cli_token_for_other_environment_is_refused(harness: Harness) -> None:
    token = _cli_token(harness, "af2")
    async with harness.client("af3") as client:
        response = await client.post(
            "/aws_mwaa/cli", headers={"Authorization": f"Bearer {token}"}, content="version"
        )
    assert response.status_code == 403 and harness.runner.calls == []


@pytest.mark.parametrize(
    ("name", "command", "named"),
    [
        ("af3", "dags show x --sav /tmp/f.dot", "--save"),
        ("af2", "dags list --subd /path", "--subdir"),
        ("af2", "dags list -vS/path", "-S|--subdir"),
        ("af3", "tasks clear d --only", "ambiguous"),
    ],
)
async def test_cli_refuses_options_in_any_spelling(
    harness: Harness, name: str, command: str, named: str
) -> None:
    async with harness.client(name) as client:
        response = await client.post(
            "/aws_mwaa/cli",
            headers={"Authorization": f"Bearer {_cli_token(harness, name)}", "Content-Type": "text/plain"},
            content=command,
        )
    assert response.status_code == 400
    assert named in response.json()["detail"]
    assert harness.runner.calls == []


async def test_cli_answers_what_the_service_raises(harness: Harness) -> None:
    async with harness.client("down") as client:
        unavailable = await client.post(
            "/aws_mwaa/cli",
            headers={"Authorization": f"Bearer {_cli_token(harness, 'down')}"},
            content="version",
        )
    async with harness.client("af3") as client:
        token = {"Authorization": f"Bearer {_cli_token(harness, 'af3')}"}
        get = await client.get("/aws_mwaa/cli", headers=token)
        binary = await client.post("/aws_mwaa/cli", headers=token, content=b"\xff\xfe")
    assert unavailable.status_code == 503 and "UPDATING" in unavailable.json()["detail"]
    assert get.status_code == 405 and get.headers["allow"] == "POST"
    assert binary.status_code == 400 and "UTF-8" in binary.json()["detail"]
    assert harness.runner.calls == []
