"""What a pipeline step answers with."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    @classmethod
    def from_wire(cls, wire: tuple[int, list[tuple[bytes, bytes]], bytes]) -> Response:
        """From a wire serializer's ``(status, headers, body)``."""
        status, headers, body = wire
        return cls(status, body, headers)

    @classmethod
    def json(cls, body: bytes, status: int = 200) -> Response:
        return cls(status, body, [(b"content-type", b"application/json")])
