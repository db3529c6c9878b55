"""An in-process stand-in for Airflow, and web endpoints wired to it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from openmwaa.services.cli_commands import CliService
from openmwaa.services.web_tokens import WebTokenService
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from openmwaa.upstream.balancer import Lease, untracked_lease
from openmwaa.webserver.app import EnvironmentWebApp, WebDependencies
from openmwaa.webserver.sessions import WebSessionStore

ACCOUNT, REGION = "123456789012", "us-east-1"
JWT_SECRET = "j" * 64
TOKEN_SECRET = "t" * 64


def make_record(name: str, version: str, status: str = "AVAILABLE") -> EnvironmentRecord:
    return EnvironmentRecord(
        key=EnvironmentKey(ACCOUNT, REGION, name),
        arn=f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{name}",
        status=status,
        created_at=0.0,
        config={"AirflowVersion": version},
        previous_config=None,
        last_update=None,
        tags={},
        secrets={"jwt_secret": JWT_SECRET, "token_secret": TOKEN_SECRET},
    )


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeAirflow:
    """Records what reached 'Airflow' and answers according to the path (served by ``serve``)."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"],
                "headers": [(k.decode(), v.decode()) for k, v in scope["headers"]],
                "body": body,
            }
        )
        path = scope["path"]
        if path == "/big":
            size = int(scope["query_string"].decode().split("=")[1])
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")],
                }
            )
            chunk = b"z" * 65536
            sent = 0
            while sent < size:
                part = chunk[: min(len(chunk), size - sent)]
                sent += len(part)
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"connection", b"x-hop"),
            (b"x-hop", b"1"),
            (b"keep-alive", b"timeout=5"),
            (b"set-cookie", b"session=from-airflow; Path=/"),
            (b"set-cookie", b"_token=from-airflow; Path=/"),
            (b"set-cookie", b"airflow_pref=1; Path=/"),
        ]
        status = 200
        if path == "/redirect":
            status = 302
            headers.append((b"location", f"{self.base_url}/home".encode()))
        payload = json.dumps({"path": path, "length": len(body)}).encode()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def last_header(self, name: str) -> list[str]:
        return [v for k, v in self.requests[-1]["headers"] if k == name]


class Records:
    def __init__(self, *records: EnvironmentRecord) -> None:
        self.records = {r.key: r for r in records}

    def get(self, key: EnvironmentKey) -> EnvironmentRecord | None:
        return self.records.get(key)


class Endpoints:
    def __init__(self) -> None:
        self.running: dict[str, str] = {}

    def endpoint(self, key: str) -> str | None:
        return self.running.get(key)

    def lease(self, key: str) -> Lease | None:
        url = self.running.get(key)
        return untracked_lease(url) if url is not None else None


class FakeRunner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run(self, record: EnvironmentRecord, argv: list[str], timeout: float) -> tuple[int, bytes, bytes]:
        self.calls.append(argv)
        return 0, ("ran " + " ".join(argv)).encode(), b"\xffwarn"


@dataclass
class Harness:
    clock: Clock
    tokens: WebTokenService
    sessions: WebSessionStore
    airflow: FakeAirflow
    records: Records
    endpoints: Endpoints
    runner: FakeRunner
    deps: WebDependencies

    def app(self, name: str) -> EnvironmentWebApp:
        return EnvironmentWebApp(f"{ACCOUNT}/{REGION}/{name}", self.deps)

    def client(self, name: str, *, scheme: str = "https") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app(name), client=("203.0.113.7", 5555))
        return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://127.0.0.1:8761")

    def web_token(self, name: str, role: str = "Op", identity: str = "assumed-role/Admin/alice") -> str:
        arn = self.records.get(EnvironmentKey(ACCOUNT, REGION, name)).arn  # type: ignore[union-attr]
        return self.tokens.issue_web_token(environment_arn=arn, identity=identity, role=role)


@contextmanager
def serve(airflow: FakeAirflow) -> Iterator[FakeAirflow]:
    """The fake on a real loopback port (uvicorn in a thread), as openmwaa reaches a real Airflow."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(airflow, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake Airflow did not start")
        time.sleep(0.01)
    airflow.base_url = f"http://127.0.0.1:{port}"
    try:
        yield airflow
    finally:
        server.should_exit = True
        thread.join(10)


def make_harness(airflow: FakeAirflow) -> Harness:
    clock = Clock()
    tokens = WebTokenService(b"m" * 32, clock=clock)
    sessions = WebSessionStore(b"s" * 32, ttl=3600, clock=clock)
    records = Records(
        make_record("af2", "2.11.0"), make_record("af3", "3.3.1"), make_record("down", "3.3.1", "UPDATING")
    )
    endpoints = Endpoints()
    for name in ("af2", "af3"):
        endpoints.running[f"{ACCOUNT}/{REGION}/{name}"] = airflow.base_url
    runner = FakeRunner()
    deps = WebDependencies(
        records=records,
        tokens=tokens,
        sessions=sessions,
        endpoints=endpoints,
        cli=CliService(runner, tokens),
        secure_cookies=True,
        clock=clock,
    )
    return Harness(clock, tokens, sessions, airflow, records, endpoints, runner, deps)


async def chunks(total: int, size: int = 65536) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        sent += part
        yield b"y" * part
