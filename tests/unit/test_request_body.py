"""One body reader for both endpoints: bounded in size and time, and a client gone mid-body is
never taken for the end of its body (the API's own copy used to hand the pipeline what it had)."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from openmwaa.errors import OpenMwaaError
from openmwaa.pipeline.asgi import ApiApp
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response
from openmwaa.request_body import (
    BodyTimeoutError,
    BodyTooLargeError,
    ClientDisconnectedError,
    read_body,
    stream_body,
)

Message = MutableMapping[str, Any]


def messages(*items: Message, then_wait: bool = False) -> Any:
    queue = list(items)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then_wait:
            await asyncio.sleep(3600)
        raise AssertionError("read past the body")

    return receive


def part(data: bytes, more: bool = True) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


GONE: Message = {"type": "http.disconnect"}


def test_the_whole_body_in_pieces() -> None:
    got = asyncio.run(read_body(messages(part(b"ab"), part(b""), part(b"c", more=False)), 3))
    assert got == b"abc"


@pytest.mark.parametrize(
    ("receive", "error"),
    [
        (lambda: messages(part(b"ab"), part(b"cd", more=False)), BodyTooLargeError),
        (lambda: messages(part(b"ab"), GONE), ClientDisconnectedError),
        (lambda: messages(part(b"ab"), then_wait=True), BodyTimeoutError),
    ],
    ids=["too large", "gone mid-body", "too slow"],
)
def test_a_body_too_large_cut_short_or_too_slow_is_an_error(receive: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        asyncio.run(read_body(receive(), 3, timeout=0.1))


def test_a_streamed_body_cut_short_is_an_error_not_its_end() -> None:
    async def main() -> list[bytes]:
        return [chunk async for chunk in stream_body(messages(part(b"ab"), GONE))]

    with pytest.raises(ClientDisconnectedError):
        asyncio.run(main())


def test_the_api_never_handles_a_body_whose_client_went_away() -> None:
    handled: list[bytes] = []
    sent: list[Message] = []

    async def handle(ctx: RequestContext) -> Response:
        handled.append(ctx.body)
        return Response(200, b"{}")

    def reject(exc: OpenMwaaError, ctx: RequestContext) -> Response:
        return Response(exc.status, exc.message.encode())

    async def send(message: Message) -> None:
        sent.append(message)

    app = ApiApp(handle, reject)
    scope = {"type": "http", "method": "POST", "path": "/restapi/x", "headers": [], "query_string": b""}
    asyncio.run(app(scope, messages(part(b'{"Path": "/dags", "Me'), GONE), send))
    assert handled == [] and sent == []
    asyncio.run(app(scope, messages(part(b"{}", more=False)), send))
    assert handled == [b"{}"] and sent[0]["status"] == 200
