"""A lean HTTP/1.1 keep-alive client for openmwaa's calls to Airflow on loopback.

Both proxies (InvokeRestApi and the web endpoints' sessions) call the environment's Airflow on
loopback over plain HTTP/1.1. A general client (httpx, over httpcore and anyio) spent about a
millisecond of CPU per call on layers this never needs, which was most of what InvokeRestApi
added on top of Airflow; aiohttp's client, measured in ``benchmarks/bench_invoke_rest_api.py``,
spends 1.9 times this one's CPU per request. This one is an asyncio protocol with httptools'
C parser (``connection``), and a connection goes back to a per-origin pool when its answer was
read to its end.

- ``open`` sends a request and returns once the answer's head is in (within ``timeout``); the
  body is then read chunk by chunk, each read within ``read_timeout``. ``request`` is the
  buffered form: one deadline for everything and a size limit.
- A connection that failed, timed out, was cancelled, or whose answer was not read to its end
  is closed, never reused.
- At most ``max_connections_per_origin`` connections (idle or busy) per origin: a plugin that
  floods its Airflow cannot grow openmwaa's process without bound; a request over the limit
  waits (within its timeout) for one to come free.
- Idle connections are dropped after ``idle_ttl`` seconds (below uvicorn's 5 s keep-alive), and
  a reused connection the server closed before answering a word is retried once on a fresh one
  when the method is idempotent and the body can be sent again.
- Unsafe methods hold the origin's write gate (see ``write_gate``) until their answer is read;
  a request still waiting for the gate when its ``gone`` event is set leaves the queue unsent.
- Connections belong to the event loop that opened them; another loop never gets them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from openmwaa.upstream.connection import Connection, RawHeaders
from openmwaa.upstream.errors import (
    ClosedBeforeAnswer,
    ConnectFailed,
    RequestAbandoned,
    ResponseTooLarge,
    UpstreamTimeout,
)
from openmwaa.upstream.request import UpstreamRequest, serialize_head
from openmwaa.upstream.write_gate import SAFE_METHODS, WriteGate, WriteGates

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

Origin = tuple[str, int]


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    body: bytes


class UpstreamStream:
    """An answer whose head is in; read its body with ``chunks`` or ``read``, then ``aclose``."""

    def __init__(
        self,
        client: Http1Client,
        connection: Connection,
        head: tuple[int, RawHeaders],
        *,
        origin: Origin,
        gate: WriteGate | None,
    ) -> None:
        status, headers = head
        self.status = status
        #: As Airflow sent them: names lower-case (HTTP/1.1 headers are case-insensitive).
        self.headers = [(name.lower(), value) for name, value in headers]
        self._client = client
        self._origin = origin
        self._connection: Connection | None = connection
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

    def abort(self) -> None:
        """Stop reading an answer nobody wants any more (its connection closes; a pending read fails)."""
        if self._connection is not None and not self._connection.complete:
            self._connection.close()

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        gate, self._gate = self._gate, None
        try:
            if connection is not None:
                self._client._checkin(self._origin, connection)
        finally:
            if gate is not None:
                gate.release()


class _OriginPool:
    """An origin's idle connections, how many it has open, and who waits for one to come free."""

    def __init__(self) -> None:
        self.idle: list[Connection] = []
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def closed(self) -> None:
        self.open -= 1
        self.wake()

    def wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _Slot:
    """One connection's place in its origin's count, given back once (closed, or never opened)."""

    def __init__(self, pool: _OriginPool) -> None:
        self._pool: _OriginPool | None = pool
        pool.open += 1

    def release(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.closed()


class Http1Client:
    def __init__(
        self,
        *,
        write_gates: WriteGates | None = None,
        max_idle_per_origin: int = 32,
        max_connections_per_origin: int = 64,
        idle_ttl: float = 4.0,
    ) -> None:
        self._gates = write_gates
        self._max_idle = max_idle_per_origin
        self._max_open = max_connections_per_origin
        self._idle_ttl = idle_ttl
        self._pools: dict[Origin, _OriginPool] = {}

    def open_connections(self, host: str, port: int) -> int:
        """Connections open to an origin, idle or busy."""
        pool = self._pools.get((host, port))
        return pool.open if pool is not None else 0

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

    async def open(
        self, request: UpstreamRequest, *, timeout: float | None = None, gone: asyncio.Event | None = None
    ) -> UpstreamStream:
        """Send ``request``; the answer once its head is in (within ``timeout``, if given).

        ``gone``: the caller went away. Set while the request waits for its origin's write gate,
        it leaves the queue unsent (``RequestAbandoned``); once sent, the answer is still awaited,
        since Airflow is executing it and the gate keeps a second write out until it is done.
        """
        head, chunked = serialize_head(request)
        gate = None
        if self._gates is not None and request.method not in SAFE_METHODS:
            gate = self._gates.gate(f"{request.host}:{request.port}")
        replayable = request.body is None or isinstance(request.body, bytes)
        retry = replayable and request.method in IDEMPOTENT_METHODS
        try:
            async with asyncio.timeout(timeout):
                if gate is not None and not await gate.acquire_unless(gone):
                    raise RequestAbandoned("the caller went away before its turn")
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
        for pool in self._pools.values():
            idle, pool.idle = pool.idle, []
            for connection in idle:
                connection.close()

    async def _exchange(
        self, request: UpstreamRequest, head: bytes, chunked: bool, *, retry: bool
    ) -> tuple[Connection, int, RawHeaders]:
        head_only = request.method == "HEAD"
        connection, reused = await self._acquire(request.origin)
        for attempt in (1, 2):
            try:
                await connection.send(head, request.body, chunked=chunked, head_only=head_only)
                status, headers = await connection.head()
                return connection, status, headers
            except ClosedBeforeAnswer:
                connection.close()
                if not (reused and retry and attempt == 1):
                    raise
                connection, reused = await self._acquire(request.origin, fresh=True)
            except BaseException:
                connection.close()
                raise
        raise AssertionError("unreachable")

    async def _acquire(self, origin: Origin, *, fresh: bool = False) -> tuple[Connection, bool]:
        """An idle connection to ``origin`` (reused: True), else a new one once under the limit."""
        pool = self._pools.setdefault(origin, _OriginPool())
        while True:
            if not fresh and (connection := self._checkout(pool)) is not None:
                return connection, True
            if pool.open < self._max_open:
                return await self._connect(origin, pool), False
            waiter = asyncio.get_running_loop().create_future()
            pool.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    pool.wake()  # woken and cancelled at once: pass the turn on
                raise

    def _checkout(self, pool: _OriginPool) -> Connection | None:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        while pool.idle:
            connection = pool.idle.pop()
            fresh = now - connection.idle_since < self._idle_ttl
            if connection.reusable and connection.loop is loop and fresh:
                return connection
            connection.close()
        return None

    def _checkin(self, origin: Origin, connection: Connection) -> None:
        pool = self._pools.setdefault(origin, _OriginPool())
        if not connection.done():
            return
        if len(pool.idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        pool.idle.append(connection)
        pool.wake()

    async def _connect(self, origin: Origin, pool: _OriginPool) -> Connection:
        loop = asyncio.get_running_loop()
        slot = _Slot(pool)
        try:
            _, connection = await loop.create_connection(
                lambda: Connection(loop, on_closed=slot.release), origin[0], origin[1]
            )
        except BaseException as exc:
            slot.release()
            if isinstance(exc, OSError):
                raise ConnectFailed(f"cannot connect to {origin[0]}:{origin[1]}: {exc}") from exc
            raise
        return connection
