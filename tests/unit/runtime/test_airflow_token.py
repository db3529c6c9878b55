"""Tokens openmwaa mints for Airflow, checked the way each runtime checks them."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
import pytest

from openmwaa.runtime.airflow_token import (
    AIRFLOW_ROLES,
    MAX_AIRFLOW_USERNAME,
    AirflowTokenCache,
    airflow_username,
    mint_airflow_token,
)

JWT_SECRET = "j" * 64
TOKEN_SECRET = "t" * 64
NOW = 1_700_000_000.0


def _decode_like_airflow3(
    token: str, secret: str = JWT_SECRET, *, verify_exp: bool = False
) -> dict[str, Any]:
    # What airflow.api_fastapi.auth.tokens.JWTValidator does with the default configuration.
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=["HS512"],
        audience="apache-airflow",
        options={"require": ["exp", "iat", "nbf"], "verify_exp": verify_exp, "verify_iat": verify_exp},
        leeway=10,
    )
    return claims


def _decode_like_backend(token: str, secret: str = TOKEN_SECRET) -> dict[str, Any]:
    # What openmwaa_airflow.auth_backend does on Airflow 2.
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        audience="openmwaa-airflow",
        options={"require": ["exp", "iat", "nbf", "jti", "sub", "role"], "verify_exp": False},
        leeway=10,
    )
    return claims


def _mint(major: int, **overrides: object) -> str:
    kwargs: dict[str, object] = {
        "major": major,
        "jwt_secret": JWT_SECRET,
        "token_secret": TOKEN_SECRET,
        "username": "assumed-role/Admin/ci-runner",
        "role": "Viewer",
        "now": NOW,
    }
    kwargs.update(overrides)
    return mint_airflow_token(**kwargs)  # type: ignore[arg-type]


# -- airflow_username ------------------------------------------------------------------------


@pytest.mark.parametrize("identity", ["user/deployer", "assumed-role/Admin/ci-runner", "root", "u" * 64])
def test_short_identities_are_used_as_they_are(identity: str) -> None:
    assert airflow_username(identity) == identity


def test_long_identity_becomes_its_sha256_hex() -> None:
    identity = "assumed-role/" + "VeryLongRoleName" * 4 + "/session"
    name = airflow_username(identity)
    assert len(identity) > MAX_AIRFLOW_USERNAME
    assert len(name) == MAX_AIRFLOW_USERNAME
    assert name == hashlib.sha256(identity.encode()).hexdigest()
    assert airflow_username(identity) == name


def test_long_identities_differing_at_the_end_get_different_names() -> None:
    base = "assumed-role/Admin/" + "s" * 60
    assert airflow_username(base + "1") != airflow_username(base + "2")


def test_empty_identity_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        airflow_username("")


# -- Airflow 3 ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", AIRFLOW_ROLES)
def test_airflow3_token_carries_the_claims_airflow3_validates(role: str) -> None:
    token = _mint(3, role=role, ttl=60)
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    claims = _decode_like_airflow3(token)
    assert claims["sub"] == "assumed-role/Admin/ci-runner"
    assert claims["role"] == role.upper()
    assert claims["aud"] == "apache-airflow"
    assert claims["iss"] == "openmwaa"
    assert claims["iat"] == claims["nbf"] == int(NOW)
    assert claims["exp"] == int(NOW) + 60
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 32


def test_airflow3_token_is_signed_with_jwt_secret_not_token_secret() -> None:
    token = _mint(3)
    with pytest.raises(jwt.InvalidSignatureError):
        _decode_like_airflow3(token, secret=TOKEN_SECRET)
    with pytest.raises(jwt.InvalidSignatureError):
        _decode_like_airflow3(token, secret="x" * 64)


def test_airflow3_audience_can_follow_a_configured_jwt_audience() -> None:
    token = _mint(3, audience="my-airflow")
    with pytest.raises(jwt.InvalidAudienceError):
        _decode_like_airflow3(token)
    claims = jwt.decode(
        token, JWT_SECRET, algorithms=["HS512"], audience="my-airflow", options={"verify_exp": False}
    )
    assert claims["aud"] == "my-airflow"


def test_fresh_token_is_valid_now_and_expires_after_ttl() -> None:
    token = _mint(3, now=None, ttl=2)
    assert _decode_like_airflow3(token, verify_exp=True)["exp"] <= time.time() + 3
    stale = _mint(3, now=time.time() - 100, ttl=60)
    with pytest.raises(jwt.ExpiredSignatureError):
        _decode_like_airflow3(stale, verify_exp=True)


def test_every_token_gets_its_own_jti() -> None:
    jtis = {_decode_like_airflow3(_mint(3))["jti"] for _ in range(5)}
    assert len(jtis) == 5


def test_an_airflow3_token_that_never_leaves_openmwaa_goes_without_jti() -> None:
    # Airflow 3 looks a jti up in its revoked-token table on every request; without one it does not.
    claims = _decode_like_airflow3(_mint(3, revocable=False))
    assert "jti" not in claims
    assert (claims["sub"], claims["role"], claims["exp"]) == (
        "assumed-role/Admin/ci-runner",
        "VIEWER",
        NOW + 60,
    )


def test_an_airflow2_token_keeps_its_jti_whatever_is_asked() -> None:
    # openmwaa_airflow.auth_backend requires one.
    assert _decode_like_backend(_mint(2, revocable=False))["jti"]


def test_the_token_cache_mints_as_told() -> None:
    args: dict[str, Any] = {
        "jwt_secret": JWT_SECRET,
        "token_secret": TOKEN_SECRET,
        "username": "u",
        "role": "Admin",
    }
    assert "jti" in _decode_like_airflow3(AirflowTokenCache().token(major=3, **args))
    assert "jti" not in _decode_like_airflow3(AirflowTokenCache(revocable=False).token(major=3, **args))


# -- Airflow 2 ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", AIRFLOW_ROLES)
def test_airflow2_token_matches_the_auth_backend(role: str) -> None:
    token = _mint(2, role=role, username="user/deployer", ttl=30)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = _decode_like_backend(token)
    assert claims["sub"] == "user/deployer"
    assert claims["role"] == role
    assert claims["aud"] == "openmwaa-airflow"
    assert claims["exp"] == int(NOW) + 30


def test_airflow2_token_is_signed_with_token_secret_not_jwt_secret() -> None:
    token = _mint(2)
    with pytest.raises(jwt.InvalidSignatureError):
        _decode_like_backend(token, secret=JWT_SECRET)


def test_tokens_of_one_major_are_not_accepted_by_the_other() -> None:
    with pytest.raises(jwt.InvalidTokenError):
        _decode_like_backend(_mint(3, jwt_secret=TOKEN_SECRET))
    with pytest.raises(jwt.InvalidTokenError):
        _decode_like_airflow3(_mint(2, token_secret=JWT_SECRET))


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role": "admin"}, "role must be one of"),
        ({"role": "Superuser"}, "role must be one of"),
        ({"username": ""}, "username"),
        ({"username": "u" * 65}, "username"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": 3601}, "ttl"),
        ({"major": 1}, "unsupported Airflow major"),
        ({"jwt_secret": ""}, "secret"),
    ],
)
def test_bad_arguments_are_refused(overrides: dict[str, object], message: str) -> None:
    major = overrides.pop("major", 3)
    with pytest.raises(ValueError, match=message):
        _mint(major, **overrides)  # type: ignore[arg-type]


def test_airflow2_needs_token_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        _mint(2, token_secret="")


def test_the_token_cache_reuses_a_token_for_half_its_lifetime() -> None:
    cache = AirflowTokenCache()
    args: dict[str, Any] = {
        "major": 3,
        "jwt_secret": "j" * 64,
        "token_secret": "t" * 64,
        "username": "user/alice",
        "role": "Op",
        "ttl": 60.0,
    }
    first = cache.token(**args, now=1000.0)
    assert cache.token(**args, now=1029.0) == first
    renewed = cache.token(**args, now=1030.0)
    assert renewed != first
    assert cache.token(**{**args, "role": "Viewer"}, now=1031.0) != renewed
    assert cache.token(**{**args, "username": "user/bob"}, now=1031.0) != renewed
    assert cache.token(**{**args, "jwt_secret": "k" * 64}, now=1031.0) != renewed  # a recreated environment
    assert cache.token(**args, now=1031.0) == renewed


def test_the_token_cache_is_bounded() -> None:
    cache = AirflowTokenCache(max_entries=3)

    def token(user: str, now: float) -> str:
        return cache.token(major=2, jwt_secret="", token_secret="t" * 64, username=user, role="User", now=now)

    tokens = [token(f"u{i}", 1.0) for i in range(5)]
    assert len(cache._tokens) == 3
    assert token("u4", 2.0) == tokens[4]
    assert token("u0", 2.0) != tokens[0]  # dropped: minted anew
