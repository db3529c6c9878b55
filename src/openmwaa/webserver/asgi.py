"""Small pure-ASGI helpers for the web server: answer, read headers and cookies (bodies: ``request_body``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def header(scope: Scope, name: str) -> str | None:
    """The first value of request header ``name`` (lower-case), or None."""
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", []):
        if key == wanted:
            return bytes(value).decode("latin-1")
    return None


def cookies(scope: Scope) -> dict[str, str]:
    jar: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        if key != b"cookie":
            continue
        parsed: SimpleCookie = SimpleCookie()
        try:
            parsed.load(bytes(value).decode("latin-1"))
        except CookieError:
            continue
        for name, morsel in parsed.items():
            jar.setdefault(name, morsel.value)
    return jar


def bearer_token(scope: Scope) -> str | None:
    value = header(scope, "authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: str,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    raw = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, payload: Any, *, headers: Iterable[tuple[str, str]] = ()
) -> None:
    await respond(
        send, status, json.dumps(payload).encode(), content_type="application/json", headers=headers
    )


async def respond_html(
    send: Send, status: int, page: str, *, headers: Iterable[tuple[str, str]] = ()
) -> None:
    csp = (
        "content-security-policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
    )
    await respond(
        send, status, page.encode(), content_type="text/html; charset=utf-8", headers=[csp, *headers]
    )
