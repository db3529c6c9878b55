"""A lean HTTP/1.1 keep-alive load generator (asyncio + httptools), for the throughput benchmarks.

On a small machine the load generator shares the cores with what it measures; a general-purpose
client such as httpx spends about 2 ms of CPU per request, as much as a cheap Airflow endpoint
does, and would measure itself. This one sends the same pre-serialized request over each
connection and only parses the status line and framing of the answer (~0.1 ms per request), so
the figures are the server's. Both sides of a comparison use it the same way.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import httptools


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a request at a time, the answer's end signalled by a future."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[int] | None = None
        self._lost: BaseException | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionError("connection closed by the server")
        if self._done is not None and not self._done.done():
            self._done.set_exception(self._lost)

    # httptools callbacks
    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(self._parser.get_status_code())

    async def send(self, request: bytes) -> int:
        if self._lost is not None or self.transport is None:
            raise ConnectionError("connection is closed")
        self._done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._done


def build_request(
    url: str, headers: Mapping[str, str], method: str = "GET", body: bytes = b""
) -> tuple[str, int, bool, bytes]:
    """(host, port, tls, the bytes of the request), with Host, Accept and Content-Length added."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if tls else 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    given = {k.lower() for k in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"Host: {parts.netloc}")
    if "accept" not in given:
        lines.append("Accept: application/json")
    if body and "content-length" not in given:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return host, port, tls, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def throughput(
    url: str,
    headers: Mapping[str, str],
    *,
    seconds: float,
    concurrency: int,
    ssl_context: ssl.SSLContext | None = None,
    method: str = "GET",
    body: bytes = b"",
    latencies: list[float] | None = None,
) -> tuple[float, int]:
    """Completed 200s per second (and the count of other answers) over ``concurrency`` connections.

    ``latencies``: if given, each 200's seconds from sending to the end of its answer are appended.
    """
    host, port, tls, request = build_request(url, headers, method, body)
    loop = asyncio.get_running_loop()
    context = ssl_context if tls else None
    if tls and context is None:
        context = ssl.create_default_context()
    connections = []
    for _ in range(concurrency):
        _, protocol = await loop.create_connection(_Connection, host, port, ssl=context)
        connections.append(protocol)
    try:
        for connection in connections:  # warm up: the first answer on each connection
            await connection.send(request)
        done = errors = 0
        deadline = time.perf_counter() + seconds

        async def worker(connection: _Connection) -> None:
            nonlocal done, errors
            while (sent := time.perf_counter()) < deadline:
                if await connection.send(request) == 200:
                    done += 1
                    if latencies is not None:
                        latencies.append(time.perf_counter() - sent)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in connections))
        return done / (time.perf_counter() - started), errors
    finally:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
