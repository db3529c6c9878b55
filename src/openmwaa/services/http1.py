"""A lean HTTP/1.1 keep-alive client for InvokeRestApi's calls to Airflow on loopback.

InvokeRestApi is a request/response proxy with a small, known shape: one of five methods, a
bounded JSON body, an answer read whole (at most 6 MB) within one deadline. A general client
(httpx, over httpcore and anyio) spent about a millisecond of CPU per call on layers this never
needs, which was most of what InvokeRestApi added on top of Airflow. This one is an asyncio
protocol with httptools' C parser (the parser uvicorn uses): the request goes out in one write,
the answer is parsed as it arrives, and the connection goes back to a per-origin pool.

- One deadline covers everything: waiting for the write gate, connecting, sending, the answer.
- A connection that failed, timed out, was cancelled or answered too much is closed, never reused.
- Idle connections are dropped after ``idle_ttl`` seconds (below uvicorn's 5 s keep-alive), and
  a reused connection the server closed before answering a word is retried once on a fresh one
  when the method is idempotent.
- Unsafe methods wait for the origin's write gate (see ``write_gate``).
- Connections belong to the event loop that opened them; another loop never gets them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast

import httptools

from openmwaa.services.write_gate import SAFE_METHODS, WriteGates

IDEMPOTENT_METHODS: Final = frozenset({"GET", "OPTIONS", "PUT", "DELETE"})


class UpstreamError(Exception):
    """The request got no usable answer."""


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamUnreachable(UpstreamError):
    """Connecting failed, the connection broke, or the answer was not HTTP/1.1."""


class ResponseTooLarge(UpstreamError):
    pass


class _ClosedBeforeAnswer(UpstreamUnreachable):
    """The server closed the connection without a byte of answer (may be retried when reused)."""


@dataclass(frozen=True)
class UpstreamRequest:
    method: str
    host: str
    port: int
    #: The request target: path and query, already percent-encoded.
    target: str
    headers: Mapping[str, str]
    body: bytes | None = None

    @property
    def origin(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, max_body: int) -> None:
        self.loop = loop
        self.idle_since = 0.0
        self._max_body = max_body
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[UpstreamResponse] | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._answered = False  # a byte of the current answer arrived
        self._closed = False

    # asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's isn't a registered subclass

    def data_received(self, data: bytes) -> None:
        self._answered = True
        if self._waiter is None:  # nothing asked: a server talking out of turn
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamUnreachable(f"not an HTTP/1.1 answer: {exc}"))

    def eof_received(self) -> bool:
        self._closed = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._answered:
            self._fail(UpstreamUnreachable("the connection closed in the middle of the answer"))
        else:
            self._fail(_ClosedBeforeAnswer("the connection closed before any answer"))

    # httptools callbacks -----------------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_body:
            self._fail(ResponseTooLarge(f"the answer exceeds {self._max_body} bytes"))
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        response = UpstreamResponse(self._parser.get_status_code(), b"".join(self._chunks))
        if not self._parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # Use ------------------------------------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        return not self._closed and self._waiter is None and self._transport is not None

    async def exchange(self, request: bytes) -> UpstreamResponse:
        assert self._transport is not None and self._waiter is None
        self._chunks, self._size, self._answered = [], 0, False
        waiter: asyncio.Future[UpstreamResponse] = self.loop.create_future()
        self._waiter = waiter
        self._transport.write(request)
        return await waiter

    def close(self) -> None:
        self._closed = True
        if self._transport is None:
            return
        if self._waiter is not None:  # in the middle of an exchange: nothing more may be read
            self._transport.abort()
        else:
            self._transport.close()

    def _fail(self, error: UpstreamError) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._closed = True
        if self._transport is not None:
            self._transport.abort()


class Http1Client:
    def __init__(
        self,
        *,
        max_body: int,
        write_gates: WriteGates | None = None,
        max_idle_per_origin: int = 32,
        idle_ttl: float = 4.0,
    ) -> None:
        self._max_body = max_body
        self._gates = write_gates
        self._max_idle = max_idle_per_origin
        self._idle_ttl = idle_ttl
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def request(self, request: UpstreamRequest, *, timeout: float) -> UpstreamResponse:
        """Send ``request`` and read its answer; raises an ``UpstreamError`` without one."""
        payload = _serialize(request)
        gate = None
        if self._gates is not None and request.method not in SAFE_METHODS:
            gate = self._gates.gate(f"{request.host}:{request.port}")
        retry = request.method in IDEMPOTENT_METHODS
        try:
            async with asyncio.timeout(timeout):
                if gate is not None:
                    await gate.acquire()
                try:
                    return await self._exchange(request.origin, payload, retry=retry)
                finally:
                    if gate is not None:
                        gate.release()
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer within {timeout:g} s") from exc

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _exchange(self, origin: tuple[str, int], payload: bytes, *, retry: bool) -> UpstreamResponse:
        connection, reused = self._checkout(origin)
        if connection is None:
            connection = await self._connect(origin)
        try:
            response = await connection.exchange(payload)
        except _ClosedBeforeAnswer:
            if not (reused and retry):
                raise
            connection = await self._connect(origin)
            try:
                response = await connection.exchange(payload)
            except BaseException:
                connection.close()
                raise
        except BaseException:
            connection.close()
            raise
        self._checkin(origin, connection)
        return response

    def _checkout(self, origin: tuple[str, int]) -> tuple[_Connection | None, bool]:
        loop = asyncio.get_running_loop()
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            fresh = now - connection.idle_since < self._idle_ttl
            if connection.reusable and connection.loop is loop and fresh:
                return connection, True
            connection.close()
        return None, False

    def _checkin(self, origin: tuple[str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if not connection.reusable or len(idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, origin: tuple[str, int]) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(loop, self._max_body), origin[0], origin[1]
            )
        except OSError as exc:
            raise UpstreamUnreachable(f"cannot connect to {origin[0]}:{origin[1]}: {exc}") from exc
        return connection


_METHOD: Final = re.compile(r"^(GET|PUT|POST|PATCH|DELETE|OPTIONS)$")
_TARGET: Final = re.compile(r"^/[\x21-\x7e]*$")  # visible ASCII: no space, no control character
_FIELD: Final = re.compile(r"^[\x20-\x7e]*$")


def _serialize(request: UpstreamRequest) -> bytes:
    """The request as one buffer; anything that could split it into two requests is refused."""
    method, target, body = request.method, request.target, request.body
    if not _METHOD.match(method) or not _TARGET.match(target) or not _FIELD.match(request.host):
        raise ValueError("refusing to send a malformed request line")
    head = [f"{method} {target} HTTP/1.1", f"host: {request.host}:{request.port}"]
    for name, value in request.headers.items():
        if not name.isascii() or not name.replace("-", "").isalnum() or not _FIELD.match(value):
            raise ValueError(f"refusing to send a malformed header {name!r}")
        head.append(f"{name}: {value}")
    if body is not None or method not in SAFE_METHODS:
        head.append(f"content-length: {len(body or b'')}")
    return "\r\n".join(head).encode("ascii") + b"\r\n\r\n" + (body or b"")
