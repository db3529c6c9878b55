"""STS through real boto3 clients: requests are captured before sending and answered in process."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Awaitable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from openmwaa.api.sts import StsService, make_sts_handler
from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.identities import IdentityStore
from openmwaa.auth.sigv4 import verify_request
from openmwaa.auth.sts_sessions import StsSessionStore
from openmwaa.errors import OpenMwaaError, ValidationError
from openmwaa.iam.engine import evaluate
from openmwaa.iam.request import AuthzRequest, Decision
from openmwaa.pipeline.response import Response
from openmwaa.pipeline.steps import is_sts_request
from openmwaa.principal import Principal
from openmwaa.wire.sts import error_response
from tests.unit.authtest_support import (
    ACCOUNT,
    ALICE_KEY,
    ALICE_SECRET,
    BOB_KEY,
    BOB_SECRET,
    CAROL_KEY,
    CAROL_SECRET,
    REGION,
    context_from,
)

ENDPOINT = "http://127.0.0.1:8750"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/Deployer"
CHAINED = f"arn:aws:iam::{ACCOUNT}:role/Chained"


T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    """Run one step's awaitable to its result (asyncio.run takes coroutines only)."""

    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self._data


class Server:
    """Authentication + STS handler + STS error serialization, as the pipeline chains them."""

    def __init__(self, store: IdentityStore) -> None:
        self.store = store
        self.sts = StsService(store, store.sessions, account_id=ACCOUNT)
        self.handler = make_sts_handler(self.sts, authorizer=self, clock=time.time)
        self.contexts: list[Any] = []

    def decide(
        self, principal: Principal, action: str, resource: str, context: Mapping[str, Any]
    ) -> Decision:
        return evaluate(
            self.store.policies_for(principal), AuthzRequest(action, resource, principal.arn, context)
        )

    def send(self, request: Any, **_: Any) -> AWSResponse:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else bytes(body)
        ctx = context_from(request.method, request.url, list(request.headers.items()), body)
        self.contexts.append(ctx)
        assert is_sts_request(ctx)  # the pipeline routes it to this handler
        try:
            ctx.principal = verify_request(
                ctx, service="sts", region=REGION, credentials=self.store, now=time.time(), clock_skew=300
            )
            response = run(self.handler(ctx))
        except OpenMwaaError as exc:
            response = Response.from_wire(error_response(exc, ctx.request_id))
        headers = {k.decode(): v.decode() for k, v in response.headers}
        return AWSResponse(request.url, response.status, headers, _Raw(response.body))

    def client(self, key: str, secret: str, token: str | None = None) -> Any:
        client = boto3.client(
            "sts",
            region_name=REGION,
            endpoint_url=ENDPOINT,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(retries={"max_attempts": 1}, parameter_validation=False),
        )
        client.meta.events.register("before-send", self.send)
        return client


@pytest.fixture
def server(store: IdentityStore) -> Server:
    return Server(store)


def _code(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_get_caller_identity(server: Server) -> None:
    out = server.client(ALICE_KEY, ALICE_SECRET).get_caller_identity()
    assert out["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert out["Account"] == ACCOUNT
    assert out["UserId"].startswith("AIDA")
    assert out["ResponseMetadata"]["RequestId"] == "req-1"


def test_assume_role_allowed_and_credentials_work(server: Server) -> None:
    before = time.time()
    out = server.client(ALICE_KEY, ALICE_SECRET).assume_role(RoleArn=DEPLOYER, RoleSessionName="ci-run@1")
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert len(creds["SecretAccessKey"]) == 40
    assert len(creds["SessionToken"]) >= 100
    expires = creds["Expiration"].timestamp()
    assert before + 3600 - 2 <= expires <= time.time() + 3600
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci-run@1"
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":ci-run@1")
    assert (server.contexts[-1].decision, server.contexts[-1].deciding_statement) == (
        "Allow",
        "AssumeAnyRole/#0",
    )

    session = server.client(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    me = session.get_caller_identity()
    assert me["Arn"] == out["AssumedRoleUser"]["Arn"]
    assert me["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]
    resolved = server.store.lookup(creds["AccessKeyId"], creds["SessionToken"], time.time())
    assert [p.name for p in resolved.policies] == ["role/Deployer/deploy"]


def test_assume_role_duration(server: Server) -> None:
    client = server.client(ALICE_KEY, ALICE_SECRET)
    out = client.assume_role(RoleArn=DEPLOYER, RoleSessionName="long", DurationSeconds=7200)
    assert out["Credentials"]["Expiration"].timestamp() > time.time() + 7100
    for bad in (7201, 899):
        with pytest.raises(ClientError) as info:
            client.assume_role(RoleArn=DEPLOYER, RoleSessionName="long", DurationSeconds=bad)
        assert _code(info) == ("ValidationError", 400)


def test_trust_policy_must_name_caller(server: Server) -> None:
    # bob's identity policy allows sts:AssumeRole on any role, but Deployer does not trust bob.
    with pytest.raises(ClientError) as info:
        server.client(BOB_KEY, BOB_SECRET).assume_role(RoleArn=DEPLOYER, RoleSessionName="x1")
    assert _code(info) == ("AccessDenied", 403)
    assert info.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: sts:AssumeRole "
        f"on resource: {DEPLOYER}"
    )
    # The audit trail shows the trust policy's denial, not the identity policy's allow before it.
    ctx = server.contexts[-1]
    assert (ctx.action, ctx.resource, ctx.decision) == ("sts:AssumeRole", DEPLOYER, "ImplicitDeny")


def test_identity_policy_must_allow_assume_role(server: Server) -> None:
    # Deployer trusts carol, but carol has no identity policy at all.
    with pytest.raises(ClientError) as info:
        server.client(CAROL_KEY, CAROL_SECRET).assume_role(RoleArn=DEPLOYER, RoleSessionName="x1")
    assert _code(info) == ("AccessDenied", 403)
    ctx = server.contexts[-1]
    assert (ctx.action, ctx.resource, ctx.decision) == ("sts:AssumeRole", DEPLOYER, "ImplicitDeny")


def test_unknown_role_looks_denied(server: Server) -> None:
    with pytest.raises(ClientError) as info:
        server.client(ALICE_KEY, ALICE_SECRET).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Nope", RoleSessionName="x1"
        )
    assert _code(info) == ("AccessDenied", 403)


def test_role_chaining(server: Server) -> None:
    out = server.client(ALICE_KEY, ALICE_SECRET).assume_role(RoleArn=DEPLOYER, RoleSessionName="first")
    creds = out["Credentials"]
    deployer = server.client(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    chained = deployer.assume_role(RoleArn=CHAINED, RoleSessionName="second")
    assert chained["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/Chained/second"
    with pytest.raises(ClientError) as info:  # chained sessions are limited to one hour
        deployer.assume_role(RoleArn=CHAINED, RoleSessionName="second", DurationSeconds=3601)
    assert _code(info) == ("ValidationError", 400)
    with pytest.raises(ClientError) as info:  # Chained trusts only Deployer sessions
        server.client(ALICE_KEY, ALICE_SECRET).assume_role(RoleArn=CHAINED, RoleSessionName="x1")
    assert _code(info) == ("AccessDenied", 403)


@pytest.mark.parametrize("name", ["a", "x" * 65, "has space", "semi;colon"])
def test_role_session_name_pattern(server: Server, name: str) -> None:
    with pytest.raises(ClientError) as info:
        server.client(ALICE_KEY, ALICE_SECRET).assume_role(RoleArn=DEPLOYER, RoleSessionName=name)
    assert _code(info) == ("ValidationError", 400)


def test_session_policies_are_refused(server: Server) -> None:
    with pytest.raises(ClientError) as info:
        server.client(ALICE_KEY, ALICE_SECRET).assume_role(
            RoleArn=DEPLOYER, RoleSessionName="x1", Policy='{"Statement": []}'
        )
    assert _code(info) == ("ValidationError", 400)
    assert "Policy" in info.value.response["Error"]["Message"]


def test_authentication_errors_use_sts_codes(server: Server) -> None:
    with pytest.raises(ClientError) as info:
        server.client("AKIANOBODY0000000000", "x" * 40).get_caller_identity()
    assert _code(info) == ("InvalidClientTokenId", 403)
    with pytest.raises(ClientError) as info:
        server.client(ALICE_KEY, BOB_SECRET).get_caller_identity()
    assert _code(info) == ("SignatureDoesNotMatch", 403)


def test_sessions_survive_restart(server: Server, data_dir: Path, iam_path: Path) -> None:
    creds = server.client(ALICE_KEY, ALICE_SECRET).assume_role(RoleArn=DEPLOYER, RoleSessionName="keep")[
        "Credentials"
    ]
    box = SecretBox.open(data_dir)
    restarted = IdentityStore(
        iam_path, account_id=ACCOUNT, box=box, sessions=StsSessionStore(data_dir / "sessions.json", box)
    )
    me = Server(restarted).client(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert me.get_caller_identity()["Arn"].endswith("assumed-role/Deployer/keep")
    stored = "".join(path.read_text() for path in data_dir.glob("sessions.json*"))
    assert creds["AccessKeyId"] in stored
    assert creds["SecretAccessKey"] not in stored and creds["SessionToken"] not in stored


def test_assume_role_issues_the_session_off_the_event_loop(server: Server) -> None:
    loop_threads: list[threading.Thread] = []
    issuing_threads: list[threading.Thread] = []
    issue = server.sts.sessions.issue

    def recording_issue(**kwargs: Any) -> Any:
        issuing_threads.append(threading.current_thread())
        return issue(**kwargs)

    server.sts.sessions.issue = recording_issue  # type: ignore[method-assign]
    handler = server.handler

    async def handle(ctx: Any) -> Any:
        loop_threads.append(threading.current_thread())
        return await handler(ctx)

    server.handler = handle
    server.client(ALICE_KEY, ALICE_SECRET).assume_role(RoleArn=DEPLOYER, RoleSessionName="offloop")
    assert len(issuing_threads) == 1 and issuing_threads[0] is not loop_threads[0]


def test_unknown_action_and_version(server: Server) -> None:
    client = server.client(ALICE_KEY, ALICE_SECRET)
    with pytest.raises(ClientError) as info:
        client.get_session_token()
    assert _code(info) == ("InvalidAction", 404)
    ctx = dataclasses.replace(server.contexts[-1], body=b"Action=GetCallerIdentity&Version=2099-01-01")
    with pytest.raises(ValidationError):
        run(server.handler(ctx))
