"""The lean upstream client against a scripted HTTP server on loopback (real sockets)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypedDict

import pytest

from openmwaa.upstream.client import Http1Client, UpstreamResponse
from openmwaa.upstream.errors import (
    ResponseHeadTooLarge,
    ResponseTooLarge,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from openmwaa.upstream.request import UpstreamRequest
from openmwaa.upstream.write_gate import WriteGates


class Limits(TypedDict):
    timeout: float
    max_body: int


LIMITS: Limits = {"timeout": 5, "max_body": 1000}


@dataclass
class Seen:
    connection: int
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


#: What the server does with a request: the bytes to answer, or None to close without a word.
Behaviour = Callable[[Seen], Awaitable[bytes | None]]


def answer(status: int = 200, body: bytes = b'{"ok": true}', extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


@dataclass
class Server:
    behaviour: Behaviour
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode().split("\r\n")[:-2]
                method, target, _ = request_line.split(" ")
                headers = dict(line.split(": ", 1) for line in lines)
                if headers.get("transfer-encoding") == "chunked":
                    body = b""
                    while size := int((await reader.readline()).strip(), 16):
                        body += await reader.readexactly(size)
                        await reader.readline()
                    await reader.readline()
                else:
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                seen = Seen(number, method, target, headers, body)
                self.seen.append(seen)
                reply = await self.behaviour(seen)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def run(
    behaviour: Behaviour, body: Callable[[Server, Http1Client], Awaitable[None]], **client_kw: object
) -> Server:
    async def main() -> Server:
        server = Server(behaviour)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        server.port = listener.sockets[0].getsockname()[1]
        client = Http1Client(**client_kw)  # type: ignore[arg-type]
        try:
            await body(server, client)
        finally:
            await client.aclose()
            listener.close()
        return server

    return asyncio.run(main())


def req(
    server: Server, method: str = "GET", target: str = "/api/v2/dags", body: bytes | None = None
) -> UpstreamRequest:
    return UpstreamRequest(method, "127.0.0.1", server.port, target, [("accept", "application/json")], body)


async def ok(seen: Seen) -> bytes:
    return answer()


def test_the_request_arrives_as_sent_and_the_connection_is_kept_alive() -> None:
    got: list[UpstreamResponse] = []

    async def body(server: Server, client: Http1Client) -> None:
        got.append(await client.request(req(server), **LIMITS))
        got.append(
            await client.request(
                req(server, "POST", "/api/v2/variables?x=1", b'{"k": 1}'), timeout=5, max_body=1000
            )
        )
        got.append(await client.request(req(server, "DELETE", "/api/v2/variables/k"), **LIMITS))

    server = run(ok, body)
    assert [r.status for r in got] == [200, 200, 200] and got[0].body == b'{"ok": true}'
    assert server.connections == 1
    post = server.seen[1]
    assert (post.method, post.target, post.body) == ("POST", "/api/v2/variables?x=1", b'{"k": 1}')
    assert post.headers["host"] == f"127.0.0.1:{server.port}" and post.headers["content-length"] == "8"
    assert "content-length" not in server.seen[0].headers  # a GET without a body
    assert server.seen[2].headers["content-length"] == "0"  # an unsafe method always says


def test_chunked_and_empty_answers() -> None:
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ]
    )

    async def behaviour(seen: Seen) -> bytes:
        return next(answers)

    got: list[UpstreamResponse] = []

    async def body(server: Server, client: Http1Client) -> None:
        got.append(await client.request(req(server), **LIMITS))
        got.append(await client.request(req(server, "DELETE", "/x"), **LIMITS))

    run(behaviour, body)
    assert got == [UpstreamResponse(200, b"hello world"), UpstreamResponse(204, b"")]


def test_an_answer_over_the_limit_fails_and_its_connection_is_dropped() -> None:
    async def behaviour(seen: Seen) -> bytes:
        return answer(body=b"x" * (2000 if seen.target == "/big" else 10))

    async def body(server: Server, client: Http1Client) -> None:
        with pytest.raises(ResponseTooLarge):
            await client.request(req(server, target="/big"), **LIMITS)
        assert (await client.request(req(server, target="/small"), **LIMITS)).body == b"x" * 10

    server = run(behaviour, body)
    assert server.connections == 2


def test_a_timeout_covers_the_answer_and_the_connection_is_dropped() -> None:
    async def behaviour(seen: Seen) -> bytes:
        if seen.target == "/slow":
            await asyncio.sleep(2)
        return answer()

    async def body(server: Server, client: Http1Client) -> None:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await client.request(req(server, target="/slow"), timeout=0.2, max_body=1000)
        assert time.monotonic() - started < 1
        assert (await client.request(req(server, target="/fast"), **LIMITS)).status == 200

    server = run(behaviour, body)
    assert server.connections == 2  # the late answer on the first connection is never read as ours


@pytest.mark.parametrize(
    ("method", "retried"), [("GET", True), ("PUT", True), ("DELETE", True), ("POST", False), ("PATCH", False)]
)
def test_a_reused_connection_closed_before_answering_is_retried_only_when_idempotent(
    method: str, retried: bool
) -> None:
    async def behaviour(seen: Seen) -> bytes | None:
        # the second request on the first connection: the server hangs up, as at keep-alive expiry
        return None if seen.connection == 1 and len(seen_on(1)) == 2 else answer()

    server_ref: list[Server] = []

    def seen_on(connection: int) -> list[Seen]:
        return [s for s in server_ref[0].seen if s.connection == connection]

    outcome: list[object] = []

    async def body(server: Server, client: Http1Client) -> None:
        server_ref.append(server)
        await client.request(req(server), **LIMITS)
        try:
            outcome.append(await client.request(req(server, method, "/again", b"{}"), **LIMITS))
        except UpstreamUnreachable as exc:
            outcome.append(exc)

    server = run(behaviour, body)
    again = [s for s in server.seen if s.target == "/again"]
    if retried:
        assert isinstance(outcome[0], UpstreamResponse) and len(again) == 2
    else:
        assert isinstance(outcome[0], UpstreamUnreachable) and len(again) == 1


def test_idle_connections_expire() -> None:
    async def body(server: Server, client: Http1Client) -> None:
        await client.request(req(server), **LIMITS)
        await asyncio.sleep(0.15)
        await client.request(req(server), **LIMITS)

    assert run(ok, body, idle_ttl=0.1).connections == 2
    assert run(ok, body, idle_ttl=5).connections == 1


def test_an_answer_cut_short_is_an_error_not_a_body() -> None:
    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
            await writer.drain()
            writer.close()

        listener = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        client = Http1Client()
        try:
            with pytest.raises(UpstreamUnreachable, match="middle of the answer"):
                await client.request(
                    UpstreamRequest("GET", "127.0.0.1", port, "/", []), timeout=5, max_body=1000
                )
        finally:
            await client.aclose()
            listener.close()

    asyncio.run(main())


def test_nothing_listening_is_unreachable() -> None:
    async def main() -> None:
        client = Http1Client()
        with pytest.raises(UpstreamUnreachable):
            await client.request(UpstreamRequest("GET", "127.0.0.1", 1, "/", []), **LIMITS)

    asyncio.run(main())


@pytest.mark.parametrize(
    "request_",
    [
        UpstreamRequest("GET", "127.0.0.1", 1, "/a b", []),
        UpstreamRequest("GET", "127.0.0.1", 1, "/a\r\nx: y", []),
        UpstreamRequest("GET", "127.0.0.1", 1, "/a", [("x", "1\r\nevil: yes")]),
        UpstreamRequest("GET", "127.0.0.1", 1, "/a", [("x y", "1")]),
        UpstreamRequest("GET\r\n", "127.0.0.1", 1, "/a", []),
        UpstreamRequest("GET", "127.0.0.1", 1, "/a", [("x", "1\x00")]),
        UpstreamRequest("GET", "127.0.0.1", 1, "a", []),
    ],
)
def test_nothing_that_could_split_a_request_is_sent(request_: UpstreamRequest) -> None:
    async def main() -> None:
        with pytest.raises(ValueError):
            await Http1Client().request(request_, **LIMITS)

    asyncio.run(main())


class PeakConcurrency:
    """An upstream that takes 50 ms per request and records the most requests it held at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0

    async def behaviour(self, seen: Seen) -> bytes:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.05)
        self.in_flight -= 1
        return answer()


def test_writes_to_one_origin_wait_for_each_other() -> None:
    upstream = PeakConcurrency()

    async def body(server: Server, client: Http1Client) -> None:
        await asyncio.gather(*(client.request(req(server, "POST", "/v", b"{}"), **LIMITS) for _ in range(4)))

    run(upstream.behaviour, body, write_gates=WriteGates())
    assert upstream.peak == 1
    upstream.peak = 0
    run(upstream.behaviour, body)  # the control: without gates they overlap
    assert upstream.peak > 1


def test_no_state_rides_from_one_call_to_the_next() -> None:
    """Airflow's Set-Cookie (a session, a refreshed token) never reaches another caller's request."""

    async def behaviour(seen: Seen) -> bytes:
        return answer(extra="set-cookie: session=alice; Path=/\r\n")

    async def body(server: Server, client: Http1Client) -> None:
        await client.request(req(server), **LIMITS)
        await client.request(req(server), **LIMITS)

    server = run(behaviour, body)
    assert [s.headers.get("cookie") for s in server.seen] == [None, None]


def test_a_head_answer_has_no_body_whatever_its_length_says() -> None:
    async def behaviour(seen: Seen) -> bytes:
        if seen.method == "HEAD":
            return b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"
        return answer()

    got: list[UpstreamResponse] = []

    async def body(server: Server, client: Http1Client) -> None:
        got.append(await client.request(req(server, "HEAD"), **LIMITS))
        got.append(await client.request(req(server), **LIMITS))

    server = run(behaviour, body)
    assert got[0] == UpstreamResponse(200, b"") and got[1].status == 200
    assert server.connections == 2  # a HEAD's connection is not trusted with another request


def test_streams_both_ways_with_backpressure() -> None:
    size = 3 * 1024 * 1024 + 5  # more than the high-water mark: reading pauses and resumes

    async def behaviour(seen: Seen) -> bytes:
        if seen.target == "/download":
            return answer(body=b"d" * size)
        return answer(body=str(len(seen.body)).encode())

    async def upload(total: int) -> AsyncIterator[bytes]:
        for _ in range(total // 65536):
            yield b"u" * 65536
        yield b"u" * (total % 65536)

    results: dict[str, object] = {}

    async def body(server: Server, client: Http1Client) -> None:
        stream = await client.open(req(server, target="/download"), timeout=5)
        received = 0
        async for chunk in stream.chunks(read_timeout=5):
            received += len(chunk)
            await asyncio.sleep(0)  # a slow reader
        await stream.aclose()
        results["download"] = received
        chunked = UpstreamRequest("POST", "127.0.0.1", server.port, "/up", [], upload(size))
        stream = await client.open(chunked, timeout=5)
        results["chunked"] = await stream.read(100)
        await stream.aclose()
        sized = UpstreamRequest(
            "PUT", "127.0.0.1", server.port, "/up", [("content-length", str(size))], upload(size)
        )
        stream = await client.open(sized, timeout=5)
        results["sized"] = await stream.read(100)
        await stream.aclose()

    server = run(behaviour, body)
    assert results == {"download": size, "chunked": str(size).encode(), "sized": str(size).encode()}
    assert server.seen[1].headers.get("transfer-encoding") == "chunked"
    assert server.seen[2].headers.get("content-length") == str(size)
    assert server.connections == 1


async def answer_once_and_close(reply: bytes) -> tuple[asyncio.Server, int]:
    """A server that answers one request with ``reply`` and closes the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    return listener, listener.sockets[0].getsockname()[1]


def fetch_once(reply: bytes, max_body: int = 1000) -> UpstreamResponse:
    async def main() -> UpstreamResponse:
        listener, port = await answer_once_and_close(reply)
        client = Http1Client()
        try:
            return await client.request(
                UpstreamRequest("GET", "127.0.0.1", port, "/", []), timeout=5, max_body=max_body
            )
        finally:
            await client.aclose()
            listener.close()

    return asyncio.run(main())


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",  # not chunked: to the close (RFC 9112 6.3)
    ],
)
def test_a_body_that_ends_where_the_server_closes_is_the_whole_answer(head: bytes) -> None:
    assert fetch_once(head + b"all of it") == UpstreamResponse(200, b"all of it")


def test_a_body_ending_at_the_close_still_respects_the_size_limit() -> None:
    with pytest.raises(ResponseTooLarge):
        fetch_once(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + b"x" * 2000)


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (b"HTTP/1.1 200 OK\r\n" + b"x-h: v\r\n" * 101 + b"content-length: 0\r\n\r\n", "header lines"),
        (b"HTTP/1.1 200 OK\r\nx-big: " + b"v" * 70_000 + b"\r\ncontent-length: 0\r\n\r\n", "bytes of head"),
        (b"HTTP/1.1 200 " + b"R" * 70_000 + b"\r\ncontent-length: 0\r\n\r\n", "bytes of head"),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 3000 + b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", "bytes"),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-t: " + b"t" * 70_000,
            "bytes of head",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" + b"x-t: 1\r\n" * 101,
            "header lines",
        ),
    ],
    ids=[
        "101 headers",
        "a 70 KB header",
        "a 70 KB reason",
        "3000 interim answers",
        "a 70 KB trailer",
        "trailers",
    ],
)
def test_an_answer_beyond_the_head_bounds_fails(reply: bytes, why: str) -> None:
    with pytest.raises(ResponseHeadTooLarge, match=why):
        fetch_once(reply)


def test_trailers_are_read_past_and_never_join_the_head() -> None:
    got = fetch_once(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nset-cookie: evil=1\r\n\r\n"
    )
    assert got == UpstreamResponse(200, b"ok")

    async def main() -> list[tuple[bytes, bytes]]:
        listener, port = await answer_once_and_close(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nset-cookie: evil=1\r\n\r\n"
        )
        client = Http1Client()
        try:
            stream = await client.open(UpstreamRequest("GET", "127.0.0.1", port, "/", []), timeout=5)
            await stream.read(100)  # to the end of the answer, trailers and all
            await stream.aclose()
            return stream.headers
        finally:
            await client.aclose()
            listener.close()

    assert asyncio.run(main()) == [(b"transfer-encoding", b"chunked")]


def test_long_streams_of_small_chunks_are_not_mistaken_for_framing() -> None:
    chunks = b"1\r\nx\r\n" * 40_000  # 240 KB of framing for 40,000 body bytes
    got = fetch_once(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n", 50_000)
    assert got == UpstreamResponse(200, b"x" * 40_000)


def test_connections_per_origin_are_bounded_and_requests_over_the_limit_wait_their_turn() -> None:
    upstream = PeakConcurrency()

    got: list[UpstreamResponse] = []
    most_open: list[int] = []

    async def body(server: Server, client: Http1Client) -> None:
        async def one() -> None:
            got.append(await client.request(req(server), **LIMITS))
            most_open.append(client.open_connections("127.0.0.1", server.port))

        await asyncio.gather(*(one() for _ in range(12)))

    server = run(upstream.behaviour, body, max_connections_per_origin=3)
    assert [r.status for r in got] == [200] * 12
    assert server.connections == 3 and upstream.peak == 3 and max(most_open) <= 3
    upstream.peak = 0
    run(upstream.behaviour, body)  # the control: under the default limit all twelve run at once
    assert upstream.peak == 12


def test_a_request_waiting_for_a_connection_times_out_and_frees_nothing_it_did_not_take() -> None:
    async def behaviour(seen: Seen) -> bytes:
        await asyncio.sleep(0.5 if seen.target == "/slow" else 0)
        return answer()

    async def body(server: Server, client: Http1Client) -> None:
        slow = asyncio.ensure_future(client.request(req(server, target="/slow"), **LIMITS))
        while client.open_connections("127.0.0.1", server.port) == 0:  # the slow one holds it
            await asyncio.sleep(0.001)
        with pytest.raises(UpstreamTimeout):
            await client.request(req(server), timeout=0.1, max_body=1000)
        assert client.open_connections("127.0.0.1", server.port) == 1
        assert (await slow).status == 200
        assert (await client.request(req(server), **LIMITS)).status == 200

    server = run(behaviour, body, max_connections_per_origin=1)
    assert server.connections == 1


async def stream_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.mark.parametrize(
    "request_",
    [
        UpstreamRequest("GET\n", "127.0.0.1", 1, "/a", []),
        UpstreamRequest("GET", "127.0.0.1", 1, "/a\n", []),
        UpstreamRequest("GET", "127.0.0.1", 1, "/a", [("x\n", "1")]),
        UpstreamRequest("GET", "127.0.0.1", 1, "/a", [("x", "1\n")]),
        UpstreamRequest("GET", "127.0.0.1\n", 1, "/a", []),
        UpstreamRequest("GET", "127.0.0.1 x", 1, "/a", []),
        UpstreamRequest("GET", "127.0.0.1", 0, "/a", []),
        UpstreamRequest("GET", "127.0.0.1", 1, "/a", [("content-length", "1\n")]),
        UpstreamRequest("POST", "127.0.0.1", 1, "/a", [("content-length", "\u00b2")], stream_of(b"xx")),
        UpstreamRequest("POST", "127.0.0.1", 1, "/a", [("content-length", "\u0663")], stream_of(b"xxx")),
    ],
    ids=[
        "method+LF",
        "target+LF",
        "name+LF",
        "value+LF",
        "host+LF",
        "host with a space",
        "port 0",
        "length+LF",
        "superscript-two length",
        "arabic-indic length",
    ],
)
def test_a_trailing_newline_or_a_non_ascii_digit_is_refused(request_: UpstreamRequest) -> None:
    async def main() -> None:
        with pytest.raises(ValueError):
            await Http1Client().request(request_, **LIMITS)

    asyncio.run(main())
