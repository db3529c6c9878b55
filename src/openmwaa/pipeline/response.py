"""What a pipeline step answers with."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: A body too large to hold in memory (an S3 object), sent as it is read; ``length`` bytes.
    stream: AsyncGenerator[bytes, None] | None = None
    #: The Content-Length when it is not ``len(body)`` (a stream, or a HEAD answer).
    length: int | None = None

    @classmethod
    def from_wire(cls, wire: tuple[int, list[tuple[bytes, bytes]], bytes]) -> Response:
        """From a wire serializer's ``(status, headers, body)``."""
        status, headers, body = wire
        return cls(status, body, headers)

    @classmethod
    def json(cls, body: bytes, status: int = 200) -> Response:
        return cls(status, body, [(b"content-type", b"application/json")])
