"""A strict CBOR (RFC 8949) codec for the subset Smithy's RPC v2 CBOR protocol uses.

Decoding takes maps with text keys, arrays, text and byte strings, integers, floats (half,
single, double), booleans, null, and tag 1 (an epoch timestamp, decoded to a float). Lengths may
be definite or indefinite. Anything else, a truncated item, trailing bytes or nesting deeper
than :data:`MAX_DEPTH` is a :class:`CborError`: the input comes from the network.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Final

MAX_DEPTH: Final = 32
_BREAK: Final = object()


class CborError(ValueError):
    """The bytes are not CBOR this codec accepts."""


@dataclass(frozen=True)
class Timestamp:
    """Encodes as tag 1 (epoch seconds), as Smithy writes timestamps."""

    seconds: float


def decode(data: bytes) -> Any:
    reader = _Reader(data)
    value = reader.item(0)
    if value is _BREAK:
        raise CborError("unexpected break")
    if reader.pos != len(data):
        raise CborError("trailing bytes after the CBOR item")
    return value


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise CborError("truncated CBOR item")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def argument(self, info: int) -> int | None:
        """The head's argument; None for an indefinite length (info 31)."""
        if info < 24:
            return info
        if info == 31:
            return None
        sizes = {24: 1, 25: 2, 26: 4, 27: 8}
        if info not in sizes:
            raise CborError(f"reserved additional information {info}")
        return int.from_bytes(self.take(sizes[info]), "big")

    def item(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CborError("CBOR nested too deeply")
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if major == 7:
            return self._simple(info)
        arg = self.argument(info)
        if major == 0:
            return _definite(arg)
        if major == 1:
            return -1 - _definite(arg)
        if major in (2, 3):
            raw = self._string(major, arg, depth)
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CborError("text string is not UTF-8") from exc
        if major == 4:
            return self._array(arg, depth)
        if major == 5:
            return self._map(arg, depth)
        tag = _definite(arg)
        value = self.item(depth + 1)
        if tag != 1 or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CborError(f"unsupported CBOR tag {tag}")
        return float(value)

    def _simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info == 25:
            return float(struct.unpack(">e", self.take(2))[0])
        if info == 26:
            return float(struct.unpack(">f", self.take(4))[0])
        if info == 27:
            return float(struct.unpack(">d", self.take(8))[0])
        if info == 31:
            return _BREAK
        raise CborError(f"unsupported simple value {info}")

    def _string(self, major: int, length: int | None, depth: int) -> bytes:
        if length is not None:
            return self.take(length)
        chunks: list[bytes] = []
        while True:
            head = self.take(1)[0]
            if head == 0xFF:
                return b"".join(chunks)
            if head >> 5 != major or head & 0x1F == 31:
                raise CborError("bad chunk in an indefinite-length string")
            chunks.append(self.take(_definite(self.argument(head & 0x1F))))

    def _array(self, length: int | None, depth: int) -> list[Any]:
        items: list[Any] = []
        while length is None or len(items) < length:
            value = self.item(depth + 1)
            if value is _BREAK:
                if length is None:
                    return items
                raise CborError("unexpected break")
            items.append(value)
        return items

    def _map(self, length: int | None, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        count = 0
        while length is None or count < length:
            key = self.item(depth + 1)
            if key is _BREAK and length is None:
                return result
            if not isinstance(key, str):
                raise CborError("map keys must be text strings")
            value = self.item(depth + 1)
            if value is _BREAK:
                raise CborError("unexpected break")
            result[key] = value
            count += 1
        return result


def _definite(arg: int | None) -> int:
    if arg is None:
        raise CborError("indefinite length where none is allowed")
    return arg


def encode(value: Any) -> bytes:
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _head(major: int, arg: int, out: bytearray) -> None:
    if arg < 24:
        out.append(major << 5 | arg)
    elif arg < 1 << 8:
        out += bytes((major << 5 | 24, arg))
    elif arg < 1 << 16:
        out.append(major << 5 | 25)
        out += arg.to_bytes(2, "big")
    elif arg < 1 << 32:
        out.append(major << 5 | 26)
        out += arg.to_bytes(4, "big")
    else:
        out.append(major << 5 | 27)
        out += arg.to_bytes(8, "big")


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if value >= 0:
            _head(0, value, out)
        else:
            _head(1, -1 - value, out)
    elif isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            _encode(int(value), out)
        else:
            out.append(0xFB)
            out += struct.pack(">d", value)
    elif isinstance(value, Timestamp):
        out.append(0xC1)  # tag 1
        _encode(value.seconds, out)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        _head(3, len(raw), out)
        out += raw
    elif isinstance(value, bytes):
        _head(2, len(value), out)
        out += value
    elif isinstance(value, (list, tuple)):
        _head(4, len(value), out)
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        _head(5, len(value), out)
        for key, item in value.items():
            _encode(str(key), out)
            _encode(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")
