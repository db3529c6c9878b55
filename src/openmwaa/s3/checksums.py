"""The checksums S3 clients send (``x-amz-checksum-*`` headers and trailers) and Content-MD5.

Each algorithm is an incremental hasher whose value is written as S3 writes it: base64 of the
digest (CRC32 and CRC32C as 4 big-endian bytes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from collections.abc import Callable
from typing import Protocol

from openmwaa.s3.errors import BadDigestError, InvalidDigestError, InvalidRequestError


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def _crc32c_table() -> list[int]:
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


class _Crc32c:
    """Castagnoli CRC (table-driven, pure Python: slow, but only paid when a client asks for it)."""

    def __init__(self) -> None:
        self._value = 0xFFFFFFFF

    def update(self, data: bytes, /) -> None:
        crc, table = self._value, _CRC32C_TABLE
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self._value = crc

    def digest(self) -> bytes:
        return (self._value ^ 0xFFFFFFFF).to_bytes(4, "big")


#: ``x-amz-checksum-<name>`` -> a new hasher.
ALGORITHMS: dict[str, Callable[[], Hasher]] = {
    "crc32": _Crc32,
    "crc32c": _Crc32c,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
}
HEADER_PREFIX = "x-amz-checksum-"


def encode(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def checksum_of(algorithm: str, data: bytes) -> str:
    hasher = ALGORITHMS[algorithm]()
    hasher.update(data)
    return encode(hasher.digest())


def algorithm_of(header: str) -> str:
    """``x-amz-checksum-crc32`` -> ``crc32``; InvalidRequestError for one S3 has but openmwaa has not."""
    name = header[len(HEADER_PREFIX) :]
    if name not in ALGORITHMS:
        raise InvalidRequestError(
            f"Checksum algorithm {name[:32]!r} is not supported here; use one of "
            f"{', '.join(sorted(ALGORITHMS))}."
        )
    return name


def verify_checksums(claimed: dict[str, str], data: bytes) -> dict[str, str]:
    """Check each ``algorithm -> base64 value`` against ``data``; the verified ones, for storing."""
    for algorithm, value in claimed.items():
        actual = checksum_of(algorithm, data)
        if not hmac.compare_digest(actual.encode(), value.strip().encode()):
            raise BadDigestError(
                f"The {algorithm.upper()} you specified did not match the calculated checksum."
            )
    return dict(claimed)


def verify_content_md5(value: str, data: bytes) -> None:
    try:
        claimed = base64.b64decode(value.strip(), validate=True)
    except ValueError as exc:
        raise InvalidDigestError("The Content-MD5 you specified was invalid.") from exc
    if len(claimed) != 16:
        raise InvalidDigestError("The Content-MD5 you specified was invalid.")
    if not hmac.compare_digest(claimed, hashlib.md5(data, usedforsecurity=False).digest()):
        raise BadDigestError("The Content-MD5 you specified did not match what we received.")
