"""A lean HTTP/1.1 keep-alive client for openmwaa's calls to Airflow on loopback.

Both proxies (InvokeRestApi and the web endpoints' sessions) call the environment's Airflow on
loopback over plain HTTP/1.1. A general client (httpx, over httpcore and anyio) spent about a
millisecond of CPU per call on layers this never needs, which was most of what InvokeRestApi
added on top of Airflow. This one is an asyncio protocol with httptools' C parser (the parser
uvicorn uses): the request head goes out in one write, the answer is parsed as it arrives and
handed over chunk by chunk (reading pauses while 1 MiB waits unread), and the connection goes
back to a per-origin pool when the answer was read to its end.

- ``open`` sends a request and returns once the answer's head is in (within ``timeout``); the
  body is then read chunk by chunk, each read within ``read_timeout``. ``request`` is the
  buffered form: one deadline for everything and a size limit.
- A connection that failed, timed out, was cancelled, or whose answer was not read to its end
  is closed, never reused.
- Idle connections are dropped after ``idle_ttl`` seconds (below uvicorn's 5 s keep-alive), and
  a reused connection the server closed before answering a word is retried once on a fresh one
  when the method is idempotent and the body can be sent again.
- Unsafe methods hold the origin's write gate (see ``write_gate``) until their answer is read.
- Connections belong to the event loop that opened them; another loop never gets them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Final, cast

import httptools

from openmwaa.services.write_gate import SAFE_METHODS, WriteGate, WriteGates

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Unread answer bytes at which reading from Airflow pauses.
HIGH_WATER: Final = 1 << 20

Headers = Sequence[tuple[str, str]]


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
    headers: Headers
    #: The body: bytes, a stream (sent as it comes: with the caller's content-length, else
    #: chunked), or None.
    body: bytes | AsyncIterator[bytes] | None = None

    @property
    def origin(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.idle_since = 0.0
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._closed = False
        self._busy = False
        self._can_write: asyncio.Future[None] | None = None
        self._begin(head_only=False)

    def _begin(self, *, head_only: bool) -> None:
        self._head_only = head_only
        self._head: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._complete = False
        self._error: UpstreamError | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._answered = False

    # asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's isn't a registered subclass

    def data_received(self, data: bytes) -> None:
        self._answered = True
        if not self._busy or self._complete:  # a server talking out of turn
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
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        if self._busy and not self._complete:
            if self._answered:
                self._fail(UpstreamUnreachable("the connection closed in the middle of the answer"))
            else:
                self._fail(_ClosedBeforeAnswer("the connection closed before any answer"))

    def pause_writing(self) -> None:
        self._can_write = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    # httptools callbacks -----------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._headers = []
            return
        if self._head is not None and not self._head.done():
            self._head.set_result((status, self._headers))
        if self._head_only:  # a HEAD answer has no body whatever its content-length says
            self._closed = True
            self._finish_message()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        self._wake()

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:
            return
        if not self._parser.should_keep_alive():
            self._closed = True
        self._finish_message()

    def _finish_message(self) -> None:
        self._complete = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    # Use ------------------------------------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        return not self._closed and not self._busy and self._transport is not None

    async def send(
        self, head: bytes, body: bytes | AsyncIterator[bytes] | None, *, chunked: bool, head_only: bool
    ) -> None:
        assert self._transport is not None and not self._busy
        self._busy = True
        self._begin(head_only=head_only)
        self._head = self.loop.create_future()
        if isinstance(body, bytes) or body is None:
            self._transport.write(head + (body or b""))
            return
        self._transport.write(head)
        async for chunk in body:
            if self._error is not None:
                raise self._error
            if chunk:
                self._transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            if self._can_write is not None:
                await self._can_write
        if chunked:
            self._transport.write(b"0\r\n\r\n")

    async def head(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        assert self._head is not None
        return await self._head

    async def read_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < HIGH_WATER // 2 and self._transport is not None:
                    self._transport.resume_reading()
                    self._paused = False
                return chunk
            if self._error is not None:
                raise self._error
            if self._complete:
                return None
            self._wakeup = self.loop.create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None

    def done(self) -> bool:
        """End the exchange; True when the connection can serve another request."""
        finished = self._complete and self._error is None and not self._chunks
        if not finished or self._closed:
            self.close()  # while still busy: an unread or broken answer aborts the connection
        self._busy = False
        return finished and not self._closed

    def close(self) -> None:
        self._closed = True
        if self._transport is None:
            return
        if self._busy and not self._complete:  # in the middle of an exchange: nothing more may be read
            self._transport.abort()
        else:
            self._transport.close()


class UpstreamStream:
    """An answer whose head is in; read its body with ``chunks`` or ``read``, then ``aclose``."""

    def __init__(
        self,
        client: Http1Client,
        connection: _Connection,
        head: tuple[int, list[tuple[bytes, bytes]]],
        *,
        origin: tuple[str, int],
        gate: WriteGate | None,
    ) -> None:
        status, headers = head
        self.status = status
        #: As Airflow sent them: names lower-case (HTTP/1.1 headers are case-insensitive).
        self.headers = [(name.lower(), value) for name, value in headers]
        self._client = client
        self._origin = origin
        self._connection: _Connection | None = connection
        self._gate = gate

    async def chunks(self, read_timeout: float) -> AsyncIterator[bytes]:
        assert self._connection is not None
        while True:
            try:
                async with asyncio.timeout(read_timeout):
                    chunk = await self._connection.read_chunk()
            except TimeoutError as exc:
                raise UpstreamTimeout(f"Airflow sent nothing for {read_timeout:g} s") from exc
            if chunk is None:
                return
            yield chunk

    async def read(self, max_body: int) -> bytes:
        assert self._connection is not None
        parts: list[bytes] = []
        size = 0
        while (chunk := await self._connection.read_chunk()) is not None:
            size += len(chunk)
            if size > max_body:
                self._connection.close()  # whatever is left of it is never read
                raise ResponseTooLarge(f"the answer exceeds {max_body} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        gate, self._gate = self._gate, None
        try:
            if connection is not None:
                self._client._checkin(self._origin, connection)
        finally:
            if gate is not None:
                gate.release()


class Http1Client:
    def __init__(
        self,
        *,
        write_gates: WriteGates | None = None,
        max_idle_per_origin: int = 32,
        idle_ttl: float = 4.0,
    ) -> None:
        self._gates = write_gates
        self._max_idle = max_idle_per_origin
        self._idle_ttl = idle_ttl
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def request(self, request: UpstreamRequest, *, timeout: float, max_body: int) -> UpstreamResponse:
        """Send ``request`` and read its whole answer within ``timeout``; raises ``UpstreamError``."""
        try:
            async with asyncio.timeout(timeout):
                stream = await self.open(request)
                try:
                    return UpstreamResponse(stream.status, await stream.read(max_body))
                finally:
                    await stream.aclose()
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer within {timeout:g} s") from exc

    async def open(self, request: UpstreamRequest, *, timeout: float | None = None) -> UpstreamStream:
        """Send ``request``; the answer once its head is in (within ``timeout``, if given)."""
        head, chunked = _serialize(request)
        gate = None
        if self._gates is not None and request.method not in SAFE_METHODS:
            gate = self._gates.gate(f"{request.host}:{request.port}")
        replayable = request.body is None or isinstance(request.body, bytes)
        retry = replayable and request.method in IDEMPOTENT_METHODS
        try:
            async with asyncio.timeout(timeout):
                if gate is not None:
                    await gate.acquire()
                try:
                    connection, status, headers = await self._exchange(request, head, chunked, retry=retry)
                except BaseException:
                    if gate is not None:
                        gate.release()
                    raise
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer within {timeout:g} s") from exc
        return UpstreamStream(self, connection, (status, headers), origin=request.origin, gate=gate)

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _exchange(
        self, request: UpstreamRequest, head: bytes, chunked: bool, *, retry: bool
    ) -> tuple[_Connection, int, list[tuple[bytes, bytes]]]:
        head_only = request.method == "HEAD"
        connection = self._checkout(request.origin)
        reused = connection is not None
        for attempt in (1, 2):
            if connection is None:
                connection = await self._connect(request.origin)
            try:
                await connection.send(head, request.body, chunked=chunked, head_only=head_only)
                status, headers = await connection.head()
                return connection, status, headers
            except _ClosedBeforeAnswer:
                connection.close()
                if not (reused and retry and attempt == 1):
                    raise
                connection, reused = None, False
            except BaseException:
                connection.close()
                raise
        raise AssertionError("unreachable")

    def _checkout(self, origin: tuple[str, int]) -> _Connection | None:
        loop = asyncio.get_running_loop()
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            fresh = now - connection.idle_since < self._idle_ttl
            if connection.reusable and connection.loop is loop and fresh:
                return connection
            connection.close()
        return None

    def _checkin(self, origin: tuple[str, int], connection: _Connection) -> None:
        if not connection.done():
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, origin: tuple[str, int]) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(lambda: _Connection(loop), origin[0], origin[1])
        except OSError as exc:
            raise UpstreamUnreachable(f"cannot connect to {origin[0]}:{origin[1]}: {exc}") from exc
        return connection


_METHOD: Final = re.compile(r"^[A-Z]{1,16}$")
_TARGET: Final = re.compile(r"^/[\x21-\x7e]*$")  # visible ASCII: no space, no control character
_TOKEN: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VALUE: Final = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")  # no CR, LF, NUL or other control character
#: Framing is openmwaa's business: these never come from the caller's headers.
_FRAMING: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def _serialize(request: UpstreamRequest) -> tuple[bytes, bool]:
    """The request head (and whether the body goes chunked); anything that could split it is refused."""
    method, target, body = request.method, request.target, request.body
    if not _METHOD.match(method) or not _TARGET.match(target) or not _VALUE.match(request.host):
        raise ValueError("refusing to send a malformed request line")
    lines = [f"{method} {target} HTTP/1.1", f"host: {request.host}:{request.port}"]
    length: str | None = None
    for name, value in request.headers:
        if not _TOKEN.match(name) or not _VALUE.match(value):
            raise ValueError(f"refusing to send a malformed header {name!r}")
        lowered = name.lower()
        if lowered == "content-length":
            length = value
        if lowered not in _FRAMING:
            lines.append(f"{name}: {value}")
    chunked = False
    if isinstance(body, bytes) or body is None:
        if body is not None or method not in SAFE_METHODS:
            lines.append(f"content-length: {len(body or b'')}")
    elif length is not None and length.isdigit():
        lines.append(f"content-length: {length}")
    else:
        lines.append("transfer-encoding: chunked")
        chunked = True
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n", chunked
