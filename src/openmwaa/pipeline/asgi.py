"""The ASGI edge: turns an HTTP request into a RequestContext and a Response back into bytes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from openmwaa.errors import OpenMwaaError, PayloadTooLargeError, ValidationError
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.response import Response
from openmwaa.request_body import BodyStream, BodyTooLargeError, ClientDisconnectedError, read_body

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 8 * 1024 * 1024


def strip_absolute_form(raw_target: str) -> str:
    """``http://host:port/path`` (a client using us as its proxy) -> ``/path``."""
    lowered = raw_target[:8].lower()
    if lowered.startswith(("http://", "https://")):
        rest = raw_target.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return raw_target


def context_from_scope(scope: Scope, *, clock: Callable[[], float] = time.time) -> RequestContext:
    """The request's context; raises ValidationError for a target that is not ASCII."""
    ctx = _bare_context(scope, clock)
    raw = scope.get("raw_path") or scope["path"].encode()
    try:
        ctx.raw_path = strip_absolute_form(raw.decode("ascii").split("?", 1)[0])
        ctx.raw_query = scope.get("query_string", b"").decode("ascii")
    except UnicodeDecodeError as exc:
        raise ValidationError("The request target must be ASCII (percent-encode it).") from exc
    return ctx


def _bare_context(scope: Scope, clock: Callable[[], float]) -> RequestContext:
    """Everything but the target: enough to answer, log and audit a request refused at the edge."""
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
    client = scope.get("client") or ("", 0)
    return RequestContext(
        request_id=str(uuid.uuid4()),
        method=scope["method"],
        raw_path="",
        raw_query="",
        headers=headers,
        client_ip=str(client[0]),
        scheme=scope.get("scheme", "http"),
        received_at=clock(),
    )


class ApiApp:
    """The ASGI application of the API endpoint (MWAA + STS)."""

    def __init__(
        self,
        handle: Callable[[RequestContext], Awaitable[Response]],
        reject: Callable[[OpenMwaaError, RequestContext], Response],
        *,
        lifespan: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None,
        max_body: int = MAX_BODY_BYTES,
        body_limit: Callable[[RequestContext], int] | None = None,
        streams_body: Callable[[RequestContext], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``handle`` runs the pipeline; ``reject`` answers (and audits) what the edge refuses."""
        self._handle = handle
        self._reject = reject
        self._clock = clock
        self._lifespan = lifespan
        self._max_body = max_body
        #: A per-request body limit (S3 uploads may be larger than API calls).
        self._body_limit = body_limit
        #: Requests whose handler reads the body itself, as it arrives (S3 uploads).
        self._streams_body = streams_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if self._lifespan is not None:
                await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        response: Response | None
        try:
            ctx = context_from_scope(scope, clock=self._clock)
        except ValidationError as exc:
            ctx = _bare_context(scope, self._clock)
            response = self._reject(exc, ctx)
        else:
            if self._streams_body is not None and self._streams_body(ctx):
                stream = BodyStream(receive)
                ctx.body_stream = stream.__aiter__()
                response = await self._handle(ctx)
                if not stream.complete:
                    # Answered before the body was read (or when the client went away): the
                    # connection cannot carry another request (a client waiting for 100-continue
                    # never sends this body), so it ends with this answer.
                    response.headers.append((b"connection", b"close"))
            else:
                response = await self._read_and_handle(ctx, receive)
            if response is None:
                return
        await self._send(response, ctx, send)

    async def _read_and_handle(self, ctx: RequestContext, receive: Receive) -> Response | None:
        """The whole body first, then the pipeline (None: the client went away mid-body)."""
        try:
            limit = self._max_body if self._body_limit is None else self._body_limit(ctx)
            ctx.body = await read_body(receive, limit)
        except ClientDisconnectedError:
            return None  # a body cut short is never handled as if it were whole
        except BodyTooLargeError as exc:
            too_large = PayloadTooLargeError(f"Request body exceeds the {exc.limit} byte limit.")
            return self._reject(too_large, ctx)
        return await self._handle(ctx)

    async def _send(self, response: Response, ctx: RequestContext, send: Send) -> None:
        length = len(response.body) if response.length is None else response.length
        headers = [*response.headers, (b"content-length", str(length).encode())]
        if not any(name.lower() == b"x-amzn-requestid" for name, _ in headers):
            # Error responses already carry it (the serializer writes it); one header, one value.
            headers.append((b"x-amzn-requestid", ctx.request_id.encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if response.stream is None:
            await send({"type": "http.response.body", "body": response.body})
            return
        try:
            async for block in response.stream:
                await send({"type": "http.response.body", "body": block, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.stream.aclose()  # a client gone mid-body: the file is closed now
