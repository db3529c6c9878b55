"""``aws-chunked`` request bodies, decoded strictly.

Three encodings, named by ``x-amz-content-sha256``:

- ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: ``<hex size>\\r\\n<data>\\r\\n`` ... ``0\\r\\n``, then
  trailer lines (``x-amz-checksum-crc32:<b64>``) and an empty line.
- ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``: each chunk header carries ``;chunk-signature=<hex>``,
  a signature chained from the request's own (the seed) over the chunk's SHA-256.
- ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``: signed chunks, then the trailer lines and an
  ``x-amz-trailer-signature`` over them.

A trailer must be one the request announced in ``x-amz-trailer``; the decoded length must be
``x-amz-decoded-content-length``. Chunk signatures are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from openmwaa.errors import InvalidSignatureError
from openmwaa.pipeline.context import SigningSeed
from openmwaa.s3.errors import IncompleteBodyError, InvalidArgumentError, InvalidRequestError

UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_MODES = (UNSIGNED_TRAILER, SIGNED, SIGNED_TRAILER)
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_MAX_HEADER_LINE = 256
_MAX_TRAILERS = 4
_HEX_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(rb"[0-9a-f]{64}")
_TRAILER_NAME = re.compile(r"[a-z0-9-]{1,64}")


@dataclass(frozen=True)
class DecodedBody:
    data: bytes
    #: Trailer name (lower-case) -> value.
    trailers: dict[str, str]


def decode(
    body: bytes,
    mode: str,
    *,
    seed: SigningSeed | None,
    announced_trailers: tuple[str, ...],
    decoded_length: int | None,
) -> DecodedBody:
    """The payload of ``body`` sent in ``mode``; raises on any deviation from the format."""
    signed = mode in (SIGNED, SIGNED_TRAILER)
    if signed and seed is None:
        raise InvalidRequestError("Signed aws-chunked bodies need a header-signed request.")
    trailing = mode in (UNSIGNED_TRAILER, SIGNED_TRAILER)
    if trailing and not announced_trailers:
        raise InvalidRequestError(f"{mode} requires an x-amz-trailer header.")
    previous = seed.signature if seed is not None else ""
    pieces: list[bytes] = []
    pos = 0
    while True:
        line, pos = _line(body, pos)
        size_part, _, extension = line.partition(b";")
        if not _HEX_SIZE.fullmatch(size_part):
            raise IncompleteBodyError("aws-chunked: a chunk size is not hexadecimal.")
        size = int(size_part, 16)
        if signed:
            name, _, value = extension.partition(b"=")
            if name != b"chunk-signature" or not _SIGNATURE.fullmatch(value):
                raise InvalidSignatureError("aws-chunked: a chunk has no valid chunk-signature.")
        elif extension:
            raise IncompleteBodyError("aws-chunked: unexpected chunk extension.")
        if pos + size > len(body):
            raise IncompleteBodyError("aws-chunked: the body ends inside a chunk.")
        chunk = body[pos : pos + size]
        pos += size
        if signed:
            assert seed is not None
            previous = _check_chunk_signature(seed, previous, chunk, value.decode("ascii"))
        if size == 0:
            break
        if body[pos : pos + 2] != b"\r\n":
            raise IncompleteBodyError("aws-chunked: a chunk is not followed by CRLF.")
        pos += 2
        pieces.append(chunk)
    trailers: dict[str, str] = {}
    if trailing:
        pos = _read_trailers(body, pos, trailers, announced_trailers)
        if mode == SIGNED_TRAILER:
            assert seed is not None
            pos = _check_trailer_signature(body, pos, seed, previous, trailers)
    if body[pos:] != b"\r\n":
        raise IncompleteBodyError("aws-chunked: the body does not end after its last chunk.")
    data = b"".join(pieces)
    if decoded_length is not None and decoded_length != len(data):
        raise IncompleteBodyError(
            "The request body's decoded length does not match x-amz-decoded-content-length."
        )
    return DecodedBody(data, trailers)


def _line(body: bytes, pos: int) -> tuple[bytes, int]:
    end = body.find(b"\r\n", pos, pos + _MAX_HEADER_LINE)
    if end < 0:
        raise IncompleteBodyError("aws-chunked: a chunk header is missing or too long.")
    return body[pos:end], end + 2


def _read_trailers(body: bytes, pos: int, trailers: dict[str, str], announced: tuple[str, ...]) -> int:
    while body[pos : pos + 2] != b"\r\n" and not body.startswith(b"x-amz-trailer-signature:", pos):
        line, pos = _line(body, pos)
        name, sep, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if not sep or not _TRAILER_NAME.fullmatch(name) or name not in announced:
            raise InvalidArgumentError("aws-chunked: a trailer was not announced in x-amz-trailer.")
        if name in trailers or len(trailers) >= _MAX_TRAILERS:
            raise InvalidArgumentError("aws-chunked: a trailer is repeated.")
        trailers[name] = value.strip()
    missing = [name for name in announced if name not in trailers]
    if missing:
        raise IncompleteBodyError(f"aws-chunked: the trailer {missing[0]} was announced but not sent.")
    return pos


def _check_chunk_signature(seed: SigningSeed, previous: str, chunk: bytes, claimed: str) -> str:
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256-PAYLOAD",
            seed.timestamp,
            seed.scope,
            previous,
            _EMPTY_SHA256,
            hashlib.sha256(chunk).hexdigest(),
        ]
    )
    expected = hmac.new(seed.key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), claimed.encode()):
        raise InvalidSignatureError("aws-chunked: a chunk signature does not match.")
    return expected


def _check_trailer_signature(
    body: bytes, pos: int, seed: SigningSeed, previous: str, trailers: dict[str, str]
) -> int:
    line, pos = _line(body, pos)
    name, _, value = line.partition(b":")
    if name != b"x-amz-trailer-signature" or not _SIGNATURE.fullmatch(value):
        raise InvalidSignatureError("aws-chunked: the trailer signature is missing.")
    canonical = "".join(f"{k}:{v}\n" for k, v in trailers.items())
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256-TRAILER",
            seed.timestamp,
            seed.scope,
            previous,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    expected = hmac.new(seed.key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), value):
        raise InvalidSignatureError("aws-chunked: the trailer signature does not match.")
    return pos
