"""Dashboard sign-in URLs (expired, tampered, wrong signature, replayed) and dashboard sessions."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from botocore.credentials import Credentials

from openmwaa.auth.credentials import ResolvedCredential
from openmwaa.auth.dashboard_signin import DashboardSessions, SignInVerifier
from openmwaa.cli.dashboard import signin_url
from openmwaa.errors import (
    AccessDeniedError,
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)
from openmwaa.principal import Principal
from tests.unit.authtest_support import ACCOUNT, ALICE_KEY, ALICE_SECRET, REGION, context_from

ENDPOINT = "http://127.0.0.1:8750"
ALICE = Principal(
    arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
    account_id=ACCOUNT,
    kind="user",
    user_id="AIDAALICE",
    name="alice",
    session_name=None,
    access_key_id=ALICE_KEY,
)


class OneKey:
    def lookup(self, access_key_id: str, session_token: str | None, now: float) -> ResolvedCredential:
        if access_key_id != ALICE_KEY:
            raise UnrecognizedClientError()
        return ResolvedCredential(principal=ALICE, secret_access_key=ALICE_SECRET)


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


def _verifier(clock: Clock) -> SignInVerifier:
    return SignInVerifier(region=REGION, credentials=OneKey(), clock=clock, clock_skew=300)


def _url(expires: int = 60, secret: str = ALICE_SECRET, key: str = ALICE_KEY) -> str:
    return signin_url(ENDPOINT, Credentials(key, secret), REGION, expires)


def test_a_fresh_url_signs_in_once() -> None:
    clock = Clock(time.time())
    verifier = _verifier(clock)
    url = _url()
    assert verifier.verify(context_from("GET", url, [])) == ALICE
    with pytest.raises(AccessDeniedError, match="already been used"):
        verifier.verify(context_from("GET", url, []))


def test_an_expired_url_is_refused() -> None:
    url = _url(expires=60)
    clock = Clock(time.time() + 61)
    with pytest.raises(InvalidSignatureError, match="expired"):
        _verifier(clock).verify(context_from("GET", url, []))


def test_a_url_from_the_future_is_refused() -> None:
    url = _url()
    with pytest.raises(InvalidSignatureError, match="not yet valid"):
        _verifier(Clock(time.time() - 3600)).verify(context_from("GET", url, []))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda u: u.replace("X-Amz-Signature=", "X-Amz-Signature=0")[:-1],
        lambda u: u.replace("X-Amz-Expires=60", "X-Amz-Expires=59"),
        lambda u: u.replace("nonce=", "nonce=1"),
        lambda u: u.replace("127.0.0.1:8750", "127.0.0.1:8751"),
    ],
    ids=["signature", "expiry", "query", "host"],
)
def test_a_tampered_url_is_refused(tamper: object) -> None:
    url = tamper(_url())  # type: ignore[operator]
    with pytest.raises(InvalidSignatureError, match="signature we calculated"):
        _verifier(Clock(time.time())).verify(context_from("GET", url, []))


def test_a_wrong_secret_or_unknown_key_is_refused() -> None:
    verifier = _verifier(Clock(time.time()))
    with pytest.raises(InvalidSignatureError):
        verifier.verify(context_from("GET", _url(secret="not-alice"), []))
    with pytest.raises(UnrecognizedClientError):
        verifier.verify(context_from("GET", _url(key="AKIAUNKNOWNKEY000001"), []))


def test_a_refused_url_is_not_used_up_and_a_valid_one_still_works() -> None:
    clock = Clock(time.time())
    verifier = _verifier(clock)
    url = _url()
    with pytest.raises(InvalidSignatureError):
        verifier.verify(context_from("GET", url.replace("nonce=", "nonce=1"), []))
    assert verifier.verify(context_from("GET", url, [])) == ALICE


def test_long_lived_and_unsigned_urls_are_refused() -> None:
    verifier = _verifier(Clock(time.time()))
    with pytest.raises(IncompleteSignatureError, match="at most 300 seconds"):
        verifier.verify(context_from("GET", _url(expires=301), []))
    with pytest.raises(MissingAuthenticationTokenError):
        verifier.verify(context_from("GET", ENDPOINT + "/dashboard/signin", []))


def test_a_url_for_another_service_does_not_sign_in() -> None:
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method="GET", url=ENDPOINT + "/dashboard/signin")
    SigV4QueryAuth(Credentials(ALICE_KEY, ALICE_SECRET), "s3", REGION, expires=60).add_auth(request)
    with pytest.raises(InvalidSignatureError, match="credential scope"):
        _verifier(Clock(time.time())).verify(context_from("GET", str(request.url), []))


def test_sessions_resolve_expire_and_end() -> None:
    clock = Clock(1000.0)
    sessions = DashboardSessions(ttl=60, clock=clock)
    token = sessions.start(ALICE)
    assert len(token) >= 43 and sessions.resolve(token) == ALICE
    assert sessions.resolve(token + "x") is None
    assert sessions.resolve("") is None and sessions.resolve(None) is None
    assert sessions.resolve("x" * 1000) is None
    clock.now = 1059.0
    assert sessions.resolve(token) == ALICE
    clock.now = 1060.0
    assert sessions.resolve(token) is None
    other = sessions.start(ALICE)
    sessions.end(other)
    assert sessions.resolve(other) is None
    assert token not in repr(sessions)


def test_sessions_are_bounded() -> None:
    clock = Clock(1000.0)
    sessions = DashboardSessions(ttl=60, clock=clock, max_sessions=3)
    tokens = []
    for step in range(5):
        clock.now = 1000.0 + step
        tokens.append(sessions.start(ALICE))
    assert [sessions.resolve(t) is not None for t in tokens] == [False, False, True, True, True]
