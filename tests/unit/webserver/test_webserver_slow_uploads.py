"""A write's body is read whole, bounded in size and time, before it waits for Airflow's write
gate; a client that goes away leaves the gate's queue. Driven over ASGI message by message, so
a stalled or vanished client is exactly what the test says, against the fake Airflow on a real
loopback port."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import MutableMapping
from typing import Any

import pytest

from openmwaa.upstream.write_gate import WriteGates
from openmwaa.webserver.app import EnvironmentWebApp
from tests.unit.webserver.webtest_support import ACCOUNT, REGION, Harness

pytestmark = pytest.mark.anyio


class Client:
    """One request over ASGI: its messages are queued by the test, what comes back is recorded."""

    def __init__(self, app: EnvironmentWebApp, session: str, path: str, length: int) -> None:
        self.inbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self.sent: list[MutableMapping[str, Any]] = []
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "scheme": "https",
            "client": ("203.0.113.7", 5555),
            "server": ("127.0.0.1", 8761),
            "headers": [
                (b"host", b"127.0.0.1:8761"),
                (b"cookie", f"session={session}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(length).encode()),
            ],
        }
        self.task = asyncio.ensure_future(app(scope, self.inbox.get, self._send))

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)

    def body(self, data: bytes, *, more: bool) -> None:
        self.inbox.put_nowait({"type": "http.request", "body": data, "more_body": more})

    def leave(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)


def gated_app(harness: Harness, **deps: Any) -> EnvironmentWebApp:
    wired = dataclasses.replace(harness.deps, write_gates=WriteGates(), **deps)
    return EnvironmentWebApp(f"{ACCOUNT}/{REGION}/af2", wired)


async def session(harness: Harness) -> str:
    async with harness.client("af2") as client:
        login = await client.post("/aws_mwaa/login", data={"token": harness.web_token("af2")})
    return login.cookies["session"]


def airflow_saw(harness: Harness, path: str) -> int:
    return sum(1 for r in harness.airflow.requests if r["path"] == path)


async def test_stalled_uploads_hold_no_write_and_vanish_without_a_trace(harness: Harness) -> None:
    app = gated_app(harness)
    token = await session(harness)
    stalled = [Client(app, token, "/api/v1/stalled", 100) for _ in range(3)]
    for client in stalled:
        client.body(b'{"key": "half', more=True)
    await asyncio.sleep(0.1)
    writer = Client(app, token, "/api/v1/variables", 2)
    writer.body(b"{}", more=False)
    await asyncio.wait_for(writer.task, 5)  # not behind the stalled three
    assert writer.status == 200
    for client in stalled:
        client.leave()
    await asyncio.wait_for(asyncio.gather(*(c.task for c in stalled)), 5)
    assert [c.sent for c in stalled] == [[], [], []]  # nobody left to answer
    assert airflow_saw(harness, "/api/v1/stalled") == 0  # a half body never reaches Airflow
    after = Client(app, token, "/api/v1/variables", 2)
    after.body(b"{}", more=False)
    await asyncio.wait_for(after.task, 5)
    assert after.status == 200
    await app.aclose()


async def test_a_body_too_slow_gets_408_and_one_too_big_413(harness: Harness) -> None:
    app = gated_app(harness, request_body_timeout=0.2, max_request_body=1000)
    token = await session(harness)
    slow = Client(app, token, "/api/v1/variables", 100)
    slow.body(b'{"key": "sl', more=True)
    big = Client(app, token, "/api/v1/variables", 2000)
    big.body(b"x" * 600, more=True)
    big.body(b"x" * 600, more=True)
    await asyncio.wait_for(asyncio.gather(slow.task, big.task), 5)
    assert (slow.status, big.status) == (408, 413)
    for client in (slow, big):
        assert (b"connection", b"close") in client.sent[0]["headers"]
    assert airflow_saw(harness, "/api/v1/variables") == 0
    await app.aclose()


async def test_a_write_whose_client_leaves_while_queued_never_reaches_airflow(harness: Harness) -> None:
    app = gated_app(harness)
    token = await session(harness)
    gate = app._deps.write_gates.gate(harness.airflow.base_url.removeprefix("http://"))  # type: ignore[union-attr]
    await gate.acquire()  # a write in progress
    queued = Client(app, token, "/api/v1/queued", 2)
    queued.body(b"{}", more=False)
    await asyncio.sleep(0.1)
    queued.leave()
    await asyncio.wait_for(queued.task, 5)  # it left the queue at once
    gate.release()
    await asyncio.sleep(0.1)
    assert not gate.held
    assert queued.sent == [] and airflow_saw(harness, "/api/v1/queued") == 0
    await app.aclose()


async def test_a_client_that_leaves_mid_answer_frees_the_gate_at_once(harness: Harness) -> None:
    """Airflow answers a write with a stream that never ends (as a log tail might): the client
    leaves, and the connection to Airflow closes and the gate passes on without waiting for it."""
    upstream_closed = asyncio.Event()

    async def endless_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await reader.read()  # until openmwaa closes the connection
        upstream_closed.set()
        writer.close()

    listener = await asyncio.start_server(endless_answer, "127.0.0.1", 0)
    origin = f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    harness.endpoints.running[f"{ACCOUNT}/{REGION}/af2"] = f"http://{origin}"
    app = gated_app(harness)
    token = await session(harness)
    gate = app._deps.write_gates.gate(origin)  # type: ignore[union-attr]
    try:
        writer = Client(app, token, "/api/v1/tail", 2)
        writer.body(b"{}", more=False)
        for _ in range(100):
            if any(m.get("body") == b"hello" for m in writer.sent):
                break
            await asyncio.sleep(0.02)
        assert writer.status == 200 and gate.held
        writer.leave()
        await asyncio.wait_for(writer.task, 5)
        await asyncio.wait_for(upstream_closed.wait(), 5)
        assert not gate.held
        assert not any(m.get("more_body") is False for m in writer.sent)  # never marked complete
    finally:
        await app.aclose()
        listener.close()
