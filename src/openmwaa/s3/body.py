"""An upload's bytes, streamed: ``aws-chunked`` decoded, written to a file as they arrive, and
every checksum, Content-MD5 and the signed payload SHA-256 verified by running hashes.

Nothing is held whole in memory; the caller writes into a temporary file and renames it into
place only once :func:`receive_upload` has returned (so a bad digest leaves nothing behind).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from anyio.to_thread import run_sync

from openmwaa.pipeline.context import RequestContext
from openmwaa.request_body import ClientDisconnectedError
from openmwaa.s3 import chunked
from openmwaa.s3.checksums import ALGORITHMS, HEADER_PREFIX, Hasher, algorithm_of, encode
from openmwaa.s3.errors import (
    BadDigestError,
    ContentSha256MismatchError,
    EntityTooLargeError,
    IncompleteBodyError,
    InvalidArgumentError,
    InvalidDigestError,
    InvalidRequestError,
)

#: ``x-amz-checksum-*`` headers that are not checksum values.
_NOT_CHECKSUMS = ("x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Raw bytes are handed to a worker thread (decode, hash, write) in batches of about this size.
_BATCH = 1024 * 1024


@dataclass(frozen=True)
class Received:
    size: int
    #: The payload's MD5, as S3 writes an ETag (quoted hex).
    etag: str
    #: Verified checksums, algorithm -> base64 value.
    checksums: dict[str, str]


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Receiver:
    """The synchronous part: decode, hash and write each batch (run in a worker thread)."""

    def __init__(self, ctx: RequestContext, sink: Sink, max_bytes: int) -> None:
        self._sink = sink
        self._max = max_bytes
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        mode = ctx.header("x-amz-content-sha256") or ""
        #: A hex x-amz-content-sha256 is the SHA-256 of the raw body, checked at its end.
        self._payload_sha256 = mode if _HEX_SHA256.fullmatch(mode) else None
        self._raw_hash = hashlib.sha256() if self._payload_sha256 else None
        self._decoder: chunked.ChunkedDecoder | None = None
        announced: tuple[str, ...] = ()
        if mode in chunked.STREAMING_MODES:
            encodings = [e.strip() for e in (ctx.header("content-encoding") or "").split(",") if e.strip()]
            if encodings and "aws-chunked" not in encodings:
                raise InvalidRequestError(
                    "A streaming payload must be sent with Content-Encoding: aws-chunked."
                )
            announced = tuple(
                t.strip().lower() for t in (ctx.header("x-amz-trailer") or "").split(",") if t.strip()
            )
            for name in announced:
                if not name.startswith(HEADER_PREFIX):
                    raise InvalidArgumentError(f"Trailer {name[:64]!r} is not a checksum trailer.")
            self._decoder = chunked.ChunkedDecoder(
                mode, seed=ctx.signing_seed, announced_trailers=announced, decoded_length=decoded_length(ctx)
            )
        self._header_claims: dict[str, str] = {}
        for name, value in ctx.headers:
            if name.startswith(HEADER_PREFIX) and name not in _NOT_CHECKSUMS:
                algorithm = algorithm_of(name)
                if algorithm in self._header_claims:
                    raise InvalidRequestError(f"The {algorithm} checksum is given more than once.")
                self._header_claims[algorithm] = value
        wanted = {*self._header_claims, *(algorithm_of(name) for name in announced)}
        self._hashers: dict[str, Hasher] = {a: ALGORITHMS[a]() for a in sorted(wanted)}
        self._content_md5 = _content_md5(ctx.header("content-md5"))

    def feed(self, raw: bytes) -> None:
        if self._raw_hash is not None:
            self._raw_hash.update(raw)
        pieces = [raw] if self._decoder is None else self._decoder.feed(raw)
        for piece in pieces:
            self.size += len(piece)
            if self.size > self._max:
                raise EntityTooLargeError(_too_large(self._max))
            self._md5.update(piece)
            for hasher in self._hashers.values():
                hasher.update(piece)
        if pieces:
            self._sink.write(b"".join(pieces) if len(pieces) > 1 else pieces[0])

    def finish(self) -> Received:
        trailers = self._decoder.finish() if self._decoder is not None else {}
        if self._payload_sha256 is not None and self._raw_hash is not None:
            actual = self._raw_hash.hexdigest()
            if not hmac.compare_digest(actual.encode(), self._payload_sha256.encode()):
                raise ContentSha256MismatchError(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                )
        claimed = dict(self._header_claims)
        for name, value in trailers.items():
            algorithm = algorithm_of(name)
            if algorithm in claimed:
                raise InvalidRequestError(f"The {algorithm} checksum is given more than once.")
            claimed[algorithm] = value
        for algorithm, value in claimed.items():
            actual = encode(self._hashers[algorithm].digest())
            if not hmac.compare_digest(actual.encode(), value.strip().encode()):
                raise BadDigestError(
                    f"The {algorithm.upper()} you specified did not match the calculated checksum."
                )
        md5 = self._md5.digest()
        if self._content_md5 is not None and not hmac.compare_digest(self._content_md5, md5):
            raise BadDigestError("The Content-MD5 you specified did not match what we received.")
        return Received(self.size, f'"{md5.hex()}"', claimed)


def _too_large(max_bytes: int) -> str:
    return f"Your proposed upload exceeds the maximum allowed size ({max_bytes} bytes)."


def _content_md5(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        claimed = base64.b64decode(value.strip(), validate=True)
    except ValueError as exc:
        raise InvalidDigestError("The Content-MD5 you specified was invalid.") from exc
    if len(claimed) != 16:
        raise InvalidDigestError("The Content-MD5 you specified was invalid.")
    return claimed


def decoded_length(ctx: RequestContext) -> int:
    value = ctx.header("x-amz-decoded-content-length")
    if value is None or not value.isdigit() or len(value) > 15:
        raise InvalidRequestError("A streaming payload needs a valid x-amz-decoded-content-length header.")
    return int(value)


def check_announced_size(ctx: RequestContext, max_bytes: int) -> None:
    """EntityTooLarge before a byte is read, when the request says how large it is."""
    mode = ctx.header("x-amz-content-sha256") or ""
    announced = ctx.header(
        "x-amz-decoded-content-length" if mode in chunked.STREAMING_MODES else "content-length"
    )
    if announced is not None and announced.isdigit() and int(announced) > max_bytes:
        raise EntityTooLargeError(
            f"Your proposed upload exceeds the maximum allowed size ({max_bytes} bytes)."
        )


async def receive_upload(ctx: RequestContext, sink: Sink, *, max_bytes: int) -> Received:
    """Stream the request's payload into ``sink``, verified; raises (S3 errors) on any mismatch."""
    check_announced_size(ctx, max_bytes)
    receiver = _Receiver(ctx, sink, max_bytes)
    batch: list[bytes] = []
    pending = 0
    try:
        async for block in _raw_blocks(ctx):
            batch.append(block)
            pending += len(block)
            if pending >= _BATCH:
                await run_sync(receiver.feed, b"".join(batch))
                batch, pending = [], 0
    except ClientDisconnectedError as exc:
        raise IncompleteBodyError("The client went away before the whole body arrived.") from exc
    if batch:
        await run_sync(receiver.feed, b"".join(batch))
    return receiver.finish()


def read_upload(ctx: RequestContext) -> Received:
    """The same checks on a body already in memory (a DeleteObjects request's XML)."""
    receiver = _Receiver(ctx, _Discard(), max_bytes=len(ctx.body))
    receiver.feed(ctx.body)
    return receiver.finish()


async def _raw_blocks(ctx: RequestContext) -> AsyncIterator[bytes]:
    if ctx.body_stream is None:
        if ctx.body:
            yield ctx.body
        return
    async for block in ctx.body_stream:
        yield block


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)
