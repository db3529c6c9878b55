"""An upload's bytes: ``aws-chunked`` decoded, then every checksum and Content-MD5 verified."""

from __future__ import annotations

from dataclasses import dataclass

from openmwaa.pipeline.context import RequestContext
from openmwaa.s3 import chunked
from openmwaa.s3.checksums import HEADER_PREFIX, algorithm_of, verify_checksums, verify_content_md5
from openmwaa.s3.errors import InvalidArgumentError, InvalidRequestError

#: ``x-amz-checksum-*`` headers that are not checksum values.
_NOT_CHECKSUMS = ("x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode")


@dataclass(frozen=True)
class Upload:
    data: bytes
    #: Verified checksums, algorithm -> base64 value.
    checksums: dict[str, str]


def read_upload(ctx: RequestContext) -> Upload:
    mode = ctx.header("x-amz-content-sha256") or ""
    data = ctx.body
    trailers: dict[str, str] = {}
    if mode in chunked.STREAMING_MODES:
        encodings = [e.strip() for e in (ctx.header("content-encoding") or "").split(",") if e.strip()]
        if encodings and "aws-chunked" not in encodings:
            raise InvalidRequestError("A streaming payload must be sent with Content-Encoding: aws-chunked.")
        announced = tuple(
            t.strip().lower() for t in (ctx.header("x-amz-trailer") or "").split(",") if t.strip()
        )
        for name in announced:
            if not name.startswith(HEADER_PREFIX):
                raise InvalidArgumentError(f"Trailer {name[:64]!r} is not a checksum trailer.")
            algorithm_of(name)
        decoded = chunked.decode(
            data,
            mode,
            seed=ctx.signing_seed,
            announced_trailers=announced,
            decoded_length=_decoded_length(ctx),
        )
        data, trailers = decoded.data, decoded.trailers
    claimed: dict[str, str] = {}
    for name, value in [*ctx.headers, *trailers.items()]:
        if name.startswith(HEADER_PREFIX) and name not in _NOT_CHECKSUMS:
            algorithm = algorithm_of(name)
            if algorithm in claimed:
                raise InvalidRequestError(f"The {algorithm} checksum is given more than once.")
            claimed[algorithm] = value
    checksums = verify_checksums(claimed, data)
    md5 = ctx.header("content-md5")
    if md5 is not None:
        verify_content_md5(md5, data)
    return Upload(data, checksums)


def _decoded_length(ctx: RequestContext) -> int:
    value = ctx.header("x-amz-decoded-content-length")
    if value is None or not value.isdigit() or len(value) > 15:
        raise InvalidRequestError("A streaming payload needs a valid x-amz-decoded-content-length header.")
    return int(value)
