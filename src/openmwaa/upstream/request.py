"""A request to Airflow and its HTTP/1.1 head, refused when anything in it could split the request.

Every validator matches the whole string (``fullmatch``: ``$`` would let a trailing newline
through) and only ASCII: a ``content-length`` of Unicode digits (``str.isdigit`` accepts
``"²"``) is refused like any other malformed length.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Final

from openmwaa.upstream.write_gate import SAFE_METHODS

Headers = Sequence[tuple[str, str]]

_METHOD: Final = re.compile(r"[A-Z]{1,16}")
_TARGET: Final = re.compile(r"/[\x21-\x7e]*")  # visible ASCII: no space, no control character
#: A host name, an IPv4 address or a bracketed IPv6 address: nothing a header could be split with.
_HOST: Final = re.compile(r"[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE: Final = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # no CR, LF, NUL or other control character
_LENGTH: Final = re.compile(r"[0-9]{1,19}")
#: Connection-level headers (RFC 9110 7.6.1 and the usual proxy ones): each hop sets its own, so
#: a proxy passes none of them on.
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Framing is openmwaa's business: these never come from the caller's headers.
_FRAMING: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})


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


def serialize_head(request: UpstreamRequest) -> tuple[bytes, bool]:
    """The request head (and whether the body goes chunked); anything that could split it is refused.

    Raises ``ValueError`` for a malformed method, target, host, port, header or content-length.
    """
    method, target, body = request.method, request.target, request.body
    if not (
        _METHOD.fullmatch(method)
        and _TARGET.fullmatch(target)
        and _HOST.fullmatch(request.host)
        and 0 < request.port < 65536
    ):
        raise ValueError("refusing to send a malformed request line")
    lines = [f"{method} {target} HTTP/1.1", f"host: {request.host}:{request.port}"]
    length: str | None = None
    for name, value in request.headers:
        if not _TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
            raise ValueError(f"refusing to send a malformed header {name!r}")
        lowered = name.lower()
        if lowered == "content-length":
            if not _LENGTH.fullmatch(value):
                raise ValueError("refusing to send a malformed content-length")
            length = value
        if lowered not in _FRAMING:
            lines.append(f"{name}: {value}")
    chunked = False
    if isinstance(body, bytes) or body is None:
        if body is not None or method not in SAFE_METHODS:
            lines.append(f"content-length: {len(body or b'')}")
    elif length is not None:
        lines.append(f"content-length: {int(length)}")
    else:
        lines.append("transfer-encoding: chunked")
        chunked = True
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n", chunked
