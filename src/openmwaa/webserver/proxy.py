"""The reverse proxy from an environment's web endpoint to its Airflow, for an authenticated session.

What the caller sent for authentication never reaches Airflow: its ``Authorization`` header and
openmwaa's own cookies are removed and a freshly minted Airflow credential for the session's
identity and role is added. Hop-by-hop headers (and any the ``Connection`` header names) are
dropped both ways, ``X-Forwarded-*`` are set by openmwaa only, and answers stream, so large
downloads and server-sent events pass without buffering. A write's body is read whole (bounded
in size and time) before it waits for Airflow's write gate. Airflow's own ``Set-Cookie`` for
openmwaa's cookie names is dropped so it cannot overwrite the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from typing import Final

from openmwaa.request_body import read_body, stream_body, wait_for_disconnect
from openmwaa.upstream.client import Http1Client, UpstreamStream
from openmwaa.upstream.errors import RequestAbandoned, UpstreamError
from openmwaa.upstream.request import HOP_BY_HOP, UpstreamRequest
from openmwaa.upstream.write_gate import SAFE_METHODS
from openmwaa.webserver.asgi import Receive, Scope, Send, respond_json

#: Request headers openmwaa sets itself (or that describe the client side of the connection).
_REPLACED_REQUEST: Final = frozenset(
    {
        "authorization",
        "host",
        "cookie",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-real-ip",
    }
)


@dataclass(frozen=True)
class Upstream:
    """Where to send one request and as whom."""

    base_url: str
    bearer: str
    path: str
    query: bytes
    #: A body to send instead of the client's (already read and rewritten), or None to stream it.
    body: bytes | None = None
    #: The web server replica to send it to (``http://host:port``); empty: ``base_url``, which
    #: is also the address Airflow writes into redirects whichever replica answers.
    origin: str = ""


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[str]:
    tokens: set[str] = set()
    for key, value in headers:
        if key.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.decode("latin-1").split(",") if t.strip())
    return tokens


def filter_cookie_header(value: str, drop: Collection[str]) -> str:
    """A ``Cookie`` header without the named cookies (the rest passed as they came)."""
    kept = []
    for part in value.split(";"):
        name = part.split("=", 1)[0].strip()
        if name and name not in drop:
            kept.append(part.strip())
    return "; ".join(kept)


def upstream_request_headers(
    scope: Scope, bearer: str, drop_cookies: Collection[str], *, replaced_body: bool = False
) -> list[tuple[str, str]]:
    raw: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
    named = _connection_tokens(raw)
    out: list[tuple[str, str]] = []
    cookie_parts: list[str] = []
    for key_b, value_b in raw:
        key = key_b.decode("latin-1").lower()
        value = value_b.decode("latin-1")
        if key in HOP_BY_HOP or key in named:
            continue
        if key == "cookie":
            cookie_parts.append(value)
            continue
        if key in _REPLACED_REQUEST or (replaced_body and key == "content-length"):
            continue
        out.append((key, value))
    cookie = filter_cookie_header("; ".join(cookie_parts), drop_cookies)
    if cookie:
        out.append(("cookie", cookie))
    client = scope.get("client")
    host = next((v.decode("latin-1") for k, v in raw if k.lower() == b"host"), None)
    if client:
        out.append(("x-forwarded-for", str(client[0])))
    out.append(("x-forwarded-proto", "https" if scope.get("scheme") == "https" else "http"))
    if host:
        out.append(("x-forwarded-host", host))
    out.append(("authorization", f"Bearer {bearer}"))
    return out


def downstream_headers(
    headers: list[tuple[bytes, bytes]], drop_cookies: Collection[str], base_url: str, public_origin: str
) -> list[tuple[bytes, bytes]]:
    """Airflow's response headers (names lower-case) as the browser may see them."""
    named = _connection_tokens(headers)
    out: list[tuple[bytes, bytes]] = []
    for key_b, value_b in headers:
        lkey, value = key_b.decode("latin-1"), value_b.decode("latin-1")
        if lkey in HOP_BY_HOP or lkey in named or lkey == "date":  # uvicorn sends its own Date
            continue
        if lkey == "set-cookie" and value.split("=", 1)[0].strip() in drop_cookies:
            continue
        shown = value
        if lkey == "location" and value.startswith(base_url):
            shown = public_origin + value[len(base_url) :]
        out.append((lkey.encode("latin-1"), shown.encode("latin-1")))
    return out


def public_origin(scope: Scope) -> str:
    scheme = "https" if scope.get("scheme") == "https" else "http"
    host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


async def forward(
    client: Http1Client,
    upstream: Upstream,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    drop_cookies: Collection[str],
    read_timeout: float,
    max_body: int,
    body_timeout: float,
    elsewhere: Callable[[UpstreamError], str | None] | None = None,
) -> None:
    """Send the request to Airflow and stream Airflow's answer back.

    A write's body (anything but GET, HEAD, OPTIONS) is read whole first, within ``max_body``
    bytes and ``body_timeout`` seconds (``request_body`` raises for a client that is too big, too
    slow or gone), so only a complete request ever waits for the write gate. From then on, a
    client that goes away leaves the gate's queue unsent, or stops its answer's streaming (the
    connection to Airflow closes and the gate passes on); only while Airflow executes the write
    is its answer still awaited.
    """
    method = scope["method"]
    content: bytes | AsyncIterator[bytes] | None = upstream.body
    if content is None and method not in SAFE_METHODS:
        content = await read_body(receive, max_body, timeout=body_timeout)
    elif content is None and any(
        key.lower() in (b"content-length", b"transfer-encoding") for key, _ in scope.get("headers", [])
    ):
        content = stream_body(receive)  # a read with a body: never gated, streamed as it comes
    headers = upstream_request_headers(
        scope, upstream.bearer, drop_cookies, replaced_body=upstream.body is not None
    )
    host, _, port = (upstream.origin or upstream.base_url).removeprefix("http://").rpartition(":")
    target = upstream.path + (f"?{upstream.query.decode('latin-1')}" if upstream.query else "")
    gone = asyncio.Event()
    answering: list[UpstreamStream] = []
    watcher = None
    if not isinstance(content, AsyncIterator):  # the body is in: the next message is the disconnect
        watcher = asyncio.ensure_future(_on_disconnect(receive, gone, answering))
    try:
        try:
            stream = await _open(
                client,
                method,
                (host, int(port)),
                target,
                headers,
                content,
                timeout=read_timeout,
                gone=gone,
                elsewhere=elsewhere,
            )
        except ValueError:
            detail = "The request cannot be passed on to Airflow as it is."
            await respond_json(send, 400, {"detail": detail})
            return
        except RequestAbandoned:
            return  # the client left while its write waited for its turn: nothing was sent
        except UpstreamError as exc:
            detail = f"The environment's Airflow web server could not be reached ({type(exc).__name__})."
            await respond_json(send, 502, {"detail": detail})
            return
        answering.append(stream)
        if gone.is_set():
            stream.abort()
        try:
            await _stream_answer(
                stream, upstream, scope, send, drop_cookies=drop_cookies, read_timeout=read_timeout
            )
        except UpstreamError:
            if not gone.is_set():
                raise  # Airflow broke off mid-answer: the client's connection is cut, not completed
        finally:
            await stream.aclose()
    finally:
        if watcher is not None:
            watcher.cancel()


async def _open(  # noqa: PLR0917 - a private helper of forward, called once
    client: Http1Client,
    method: str,
    origin: tuple[str, int],
    target: str,
    headers: list[tuple[str, str]],
    content: bytes | AsyncIterator[bytes] | None,
    *,
    timeout: float,
    gone: asyncio.Event,
    elsewhere: Callable[[UpstreamError], str | None] | None,
) -> UpstreamStream:
    """Send the request; to another web server replica (``elsewhere``) if this one cannot take it."""
    host, port = origin
    while True:
        request = UpstreamRequest(method, host, port, target, headers, content)
        try:
            return await client.open(request, timeout=timeout, gone=gone)
        except RequestAbandoned:
            raise
        except UpstreamError as exc:
            other = elsewhere(exc) if elsewhere and not isinstance(content, AsyncIterator) else None
            if other is None:
                raise
            host, _, port_text = other.removeprefix("http://").rpartition(":")
            port = int(port_text)


async def _stream_answer(
    stream: UpstreamStream,
    upstream: Upstream,
    scope: Scope,
    send: Send,
    *,
    drop_cookies: Collection[str],
    read_timeout: float,
) -> None:
    headers = downstream_headers(stream.headers, drop_cookies, upstream.base_url, public_origin(scope))
    await send({"type": "http.response.start", "status": stream.status, "headers": headers})
    async for chunk in stream.chunks(read_timeout):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _on_disconnect(receive: Receive, gone: asyncio.Event, answering: list[UpstreamStream]) -> None:
    """When the client goes away: a queued write leaves the queue, an answer stops streaming."""
    await wait_for_disconnect(receive)
    gone.set()
    for stream in answering:
        stream.abort()
