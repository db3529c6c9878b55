"""The forwarded execution API: only a task token of the environment, over a confidential transport,
reaches the api-server, and Airflow's answer (its refreshed token too) comes back unchanged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from openmwaa.api.execution_api import ForwardExecutionApi
from openmwaa.auth.task_tokens import DEFAULT_AUDIENCE
from openmwaa.errors import AccessDeniedError, ServiceUnavailableError, ValidationError
from openmwaa.pipeline.context import RequestContext
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from openmwaa.upstream.balancer import Lease, untracked_lease
from openmwaa.upstream.client import Http1Client

SECRET = "jwt-secret-" + "x" * 64
ARN = "arn:aws:airflow:us-east-1:123456789012:environment/env"


def _record() -> EnvironmentRecord:
    return EnvironmentRecord(
        key=EnvironmentKey("123456789012", "us-east-1", "env"),
        arn=ARN,
        status="AVAILABLE",
        created_at=0.0,
        config={"AirflowVersion": "3.3.1"},
        previous_config=None,
        last_update=None,
        tags={},
        secrets={"jwt_secret": SECRET},
    )


def _token(secret: str = SECRET) -> str:
    now = int(time.time())
    return jwt.encode({"aud": DEFAULT_AUDIENCE, "iat": now, "exp": now + 60}, secret, algorithm="HS512")


class Upstream:
    """A raw HTTP/1.1 server standing in for the api-server: records what it got, answers fixed."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        answer = b'{"ok":true}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrefreshed-api-token: new-token\r\n"
            b"connection: close\r\ncontent-length: " + str(len(answer)).encode() + b"\r\n\r\n" + answer
        )
        await writer.drain()
        writer.close()


class Endpoints:
    def __init__(self, url: str | None) -> None:
        self.url = url

    def lease(self, key: str) -> Lease | None:
        return untracked_lease(self.url) if self.url else None


def _ctx(
    path: str, *, token: str | None, client_ip: str = "192.0.2.9", scheme: str = "https", query: str = ""
) -> RequestContext:
    headers = [
        ("content-type", "application/json"),
        ("connection", "keep-alive"),
        ("x-forwarded-for", "1.2.3.4"),
    ]
    if token is not None:
        headers.append(("authorization", f"Bearer {token}"))
    return RequestContext("rid", "PATCH", path, query, headers, client_ip, scheme, 0.0, body=b'{"state":"x"}')


def _run(step_url: str | None, ctx: RequestContext, upstream: Upstream | None = None) -> Any:
    async def go() -> Any:
        server = await upstream.start() if upstream else None
        url = f"http://127.0.0.1:{upstream.port}" if upstream else step_url
        step = ForwardExecutionApi(
            lambda name: _record() if name == "env" else None, Endpoints(url), Http1Client()
        )
        try:
            return await step(ctx)
        finally:
            if server is not None:
                server.close()

    return asyncio.run(go())


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    yield Upstream()


def test_a_task_token_is_forwarded_to_execution(upstream: Upstream) -> None:
    token = _token()
    ctx = _ctx("/_openmwaa/execution/env/task-instances/abc/state", token=token, query="x=1")
    response = _run(None, ctx, upstream)
    assert response.status == 200 and response.body == b'{"ok":true}'
    assert (b"refreshed-api-token", b"new-token") in response.headers
    assert not any(name in (b"connection", b"content-length") for name, _ in response.headers)
    sent = upstream.requests[0]
    assert sent.startswith(b"PATCH /execution/task-instances/abc/state?x=1 HTTP/1.1\r\n")
    assert b"\r\nauthorization: Bearer " + token.encode() + b"\r\n" in sent  # Airflow's own credential
    assert b"x-forwarded-for" not in sent.lower() and b"keep-alive" not in sent.lower()
    assert sent.endswith(b'{"state":"x"}')
    assert (ctx.action, ctx.resource, ctx.decision) == ("openmwaa:ExecutionApi", ARN, "Allow")


@pytest.mark.parametrize(
    "token",
    [None, "", _token(secret="another-environments-secret" * 3), "garbage"],
    ids=["none", "empty", "other-secret", "garbage"],
)
def test_without_a_task_token_nothing_reaches_airflow(upstream: Upstream, token: str | None) -> None:
    with pytest.raises(AccessDeniedError):
        _run(None, _ctx("/_openmwaa/execution/env/health", token=token), upstream)
    assert upstream.requests == []


def test_an_unknown_environment_is_refused_like_a_bad_token(upstream: Upstream) -> None:
    with pytest.raises(AccessDeniedError) as refused:
        _run(None, _ctx("/_openmwaa/execution/other/health", token=_token()), upstream)
    assert "task token" in refused.value.message


def test_plain_http_from_another_machine_is_refused(upstream: Upstream) -> None:
    with pytest.raises(AccessDeniedError):
        _run(None, _ctx("/_openmwaa/execution/env/x", token=_token(), scheme="http"), upstream)
    assert upstream.requests == []


def test_plain_http_over_loopback_is_served(upstream: Upstream) -> None:
    ctx = _ctx("/_openmwaa/execution/env/x", token=_token(), scheme="http", client_ip="127.0.0.1")
    assert _run(None, ctx, upstream).status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/_openmwaa/execution/env/",
        "/_openmwaa/execution/env/../../api/v2/dags",
        "/_openmwaa/execution/env/%2e%2e/api",
        "/_openmwaa/execution/env//x",
        "/_openmwaa/execution/1bad/x",
        "/_openmwaa/execution/env/a b",
    ],
)
def test_paths_outside_the_execution_api_are_refused(upstream: Upstream, path: str) -> None:
    with pytest.raises(ValidationError):
        _run(None, _ctx(path, token=_token()), upstream)
    assert upstream.requests == []


def test_no_api_server_is_a_503() -> None:
    with pytest.raises(ServiceUnavailableError):
        _run(None, _ctx("/_openmwaa/execution/env/x", token=_token()))


def test_other_paths_pass_on() -> None:
    assert _run(None, _ctx("/environments/env", token=None)) is None
