"""Task tokens checked before the execution API is forwarded: Airflow's signing, nothing weaker."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from openmwaa.auth.task_tokens import DEFAULT_AUDIENCE, audiences, is_task_token

SECRET = "s" * 86


def _token(secret: str = SECRET, algorithm: str = "HS512", **claims: Any) -> str:
    now = int(time.time())
    payload = {"aud": DEFAULT_AUDIENCE, "iat": now, "exp": now + 600, "sub": "ti-uuid", **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, algorithm=algorithm)


def test_a_token_the_scheduler_would_sign_is_accepted() -> None:
    assert is_task_token(_token(), SECRET, [DEFAULT_AUDIENCE])


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_token(secret="another-environment" * 5), id="other-secret"),
        pytest.param(_token(aud="urn:airflow.apache.org:api"), id="other-audience"),
        pytest.param(_token(exp=int(time.time()) - 60), id="expired"),
        pytest.param(_token(exp=None), id="no-expiry"),
        pytest.param(_token(iat=None), id="no-issued-at"),
        pytest.param(_token(algorithm="HS256"), id="weaker-algorithm"),
        pytest.param(jwt.encode({"aud": DEFAULT_AUDIENCE}, "", algorithm="none"), id="unsigned"),
        pytest.param("", id="empty"),
        pytest.param("not.a.token", id="garbage"),
        pytest.param(_token() + "x" * 9000, id="oversized"),
    ],
)
def test_anything_else_is_refused(token: str) -> None:
    assert not is_task_token(token, SECRET, [DEFAULT_AUDIENCE])


def test_no_secret_refuses_everything() -> None:
    assert not is_task_token(_token(), "", [DEFAULT_AUDIENCE])


def test_audiences_follow_the_environments_configuration() -> None:
    assert audiences(None) == [DEFAULT_AUDIENCE]
    assert audiences({"core.dags_are_paused_at_creation": "False"}) == [DEFAULT_AUDIENCE]
    assert audiences({"Execution_API.jwt_audience": "mine, older"}) == ["mine", "older"]
    assert is_task_token(_token(aud="older"), SECRET, audiences({"execution_api.jwt_audience": "mine,older"}))
