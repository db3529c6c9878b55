"""Web login and CLI tokens: issue, redeem once, expiry, binding to environment and kind, forgery."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from openmwaa.services.web_tokens import InvalidWebTokenError, WebTokenService

ENV = "arn:aws:airflow:us-east-1:123456789012:environment/env-a"
OTHER_ENV = "arn:aws:airflow:us-east-1:123456789012:environment/env-b"
KEY = b"k" * 32


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(clock: Clock) -> WebTokenService:
    return WebTokenService(KEY, clock=clock)


def _web(service: WebTokenService, env: str = ENV) -> str:
    return service.issue_web_token(environment_arn=env, identity="assumed-role/Admin/alice", role="Op")


def test_web_token_redeems_to_identity_and_role(service: WebTokenService) -> None:
    login = service.redeem_web_token(_web(service), environment_arn=ENV)
    assert (login.identity, login.role, login.environment_arn) == ("assumed-role/Admin/alice", "Op", ENV)


def test_web_token_is_single_use(service: WebTokenService) -> None:
    token = _web(service)
    service.redeem_web_token(token, environment_arn=ENV)
    with pytest.raises(InvalidWebTokenError, match="already been used"):
        service.redeem_web_token(token, environment_arn=ENV)


def test_web_token_valid_for_60_seconds(service: WebTokenService, clock: Clock) -> None:
    early, late = _web(service), _web(service)
    clock.now += 59
    service.redeem_web_token(early, environment_arn=ENV)
    clock.now += 1
    with pytest.raises(InvalidWebTokenError, match="expired"):
        service.redeem_web_token(late, environment_arn=ENV)


def test_web_token_bound_to_environment(service: WebTokenService) -> None:
    token = _web(service)
    with pytest.raises(InvalidWebTokenError, match="another environment"):
        service.redeem_web_token(token, environment_arn=OTHER_ENV)
    # A refused attempt does not use the token up.
    assert service.redeem_web_token(token, environment_arn=ENV).role == "Op"


def test_forged_and_tampered_tokens_are_refused(service: WebTokenService, clock: Clock) -> None:
    token = _web(service)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "Admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for bad in (
        f"{header}.{forged_payload}.{signature}",
        _web(WebTokenService(b"x" * 32, clock=clock)),
        jwt.encode({**claims, "jti": "n"}, KEY, algorithm="HS256"),  # the master key, not the derived one
        "not-a-token",
        "",
        "a" * 5000,
    ):
        with pytest.raises(InvalidWebTokenError):
            service.redeem_web_token(bad, environment_arn=ENV)


def test_unsigned_token_is_refused(service: WebTokenService) -> None:
    token = _web(service)
    claims = jwt.decode(token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, "", algorithm="none")
    with pytest.raises(InvalidWebTokenError):
        service.redeem_web_token(unsigned, environment_arn=ENV)


def test_token_kinds_do_not_mix(service: WebTokenService) -> None:
    cli = service.issue_cli_token(environment_arn=ENV, identity="user/bob")
    with pytest.raises(InvalidWebTokenError):
        service.redeem_web_token(cli, environment_arn=ENV)
    with pytest.raises(InvalidWebTokenError):
        service.verify_cli_token(_web(service), environment_arn=ENV)


def test_cli_token_reusable_until_expiry(service: WebTokenService, clock: Clock) -> None:
    token = service.issue_cli_token(environment_arn=ENV, identity="user/bob")
    assert service.verify_cli_token(token, environment_arn=ENV).identity == "user/bob"
    assert service.verify_cli_token(token, environment_arn=ENV).identity == "user/bob"
    with pytest.raises(InvalidWebTokenError, match="another environment"):
        service.verify_cli_token(token, environment_arn=OTHER_ENV)
    clock.now += 60
    with pytest.raises(InvalidWebTokenError, match="expired"):
        service.verify_cli_token(token, environment_arn=ENV)


def test_tokens_from_before_a_restart_are_refused(service: WebTokenService, clock: Clock) -> None:
    token = _web(service)
    restarted = WebTokenService(KEY, clock=clock)
    with pytest.raises(InvalidWebTokenError, match="restarted"):
        restarted.redeem_web_token(token, environment_arn=ENV)


def test_repr_hides_keys(service: WebTokenService) -> None:
    assert "k" * 8 not in repr(service)
