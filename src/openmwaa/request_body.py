"""Reading a request's body from ASGI, for both endpoints (the API and the web endpoints).

Bounded in size, optionally in time, and a client that goes away mid-body is never taken for
the end of its body: ``ClientDisconnectedError``, so a truncated body is never acted on or
passed on as if it were whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class BodyTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes")
        self.limit = limit


class BodyTimeoutError(Exception):
    def __init__(self, timeout: float) -> None:
        super().__init__(f"the request body did not arrive within {timeout:g} s")
        self.timeout = timeout


class ClientDisconnectedError(Exception):
    pass


async def read_body(receive: Receive, limit: int, *, timeout: float | None = None) -> bytes:
    """The whole body: at most ``limit`` bytes, all of it within ``timeout`` seconds (None: no limit)."""
    try:
        async with asyncio.timeout(timeout):
            chunks: list[bytes] = []
            size = 0
            async for chunk in stream_body(receive):
                size += len(chunk)
                if size > limit:
                    raise BodyTooLargeError(limit)
                chunks.append(chunk)
            return b"".join(chunks)
    except TimeoutError as exc:
        raise BodyTimeoutError(timeout or 0.0) from exc


async def stream_body(receive: Receive) -> AsyncIterator[bytes]:
    """The body as it arrives."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError()
        chunk = bytes(message.get("body", b""))
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


class BodyStream:
    """The body as it arrives, remembering whether it was read to its end."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in stream_body(self._receive):
            yield chunk
        self.complete = True


async def wait_for_disconnect(receive: Receive) -> None:
    """Return when the client goes away (call once the body has been read; until then it waits)."""
    while (await receive())["type"] != "http.disconnect":
        pass
