"""``aws-chunked`` request bodies, decoded strictly and incrementally (a body is never held whole).

Three encodings, named by ``x-amz-content-sha256``:

- ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: ``<hex size>\\r\\n<data>\\r\\n`` ... ``0\\r\\n``, then
  trailer lines (``x-amz-checksum-crc32:<b64>``) and an empty line.
- ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``: each chunk header carries ``;chunk-signature=<hex>``,
  a signature chained from the request's own (the seed) over the chunk's SHA-256.
- ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``: signed chunks, then the trailer lines and an
  ``x-amz-trailer-signature`` over them.

A trailer must be one the request announced in ``x-amz-trailer``; the decoded length must be
``x-amz-decoded-content-length`` (and is never exceeded while decoding). Chunk signatures are
compared in constant time.
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
_TRAILER_SIGNATURE = b"x-amz-trailer-signature:"


@dataclass(frozen=True)
class DecodedBody:
    data: bytes
    #: Trailer name (lower-case) -> value.
    trailers: dict[str, str]


class ChunkedDecoder:
    """Feed the raw body in pieces of any size; get the payload back as it is decoded."""

    def __init__(
        self,
        mode: str,
        *,
        seed: SigningSeed | None,
        announced_trailers: tuple[str, ...],
        decoded_length: int | None,
    ) -> None:
        self._signed = mode in (SIGNED, SIGNED_TRAILER)
        if self._signed and seed is None:
            raise InvalidRequestError("Signed aws-chunked bodies need a header-signed request.")
        self._trailing = mode in (UNSIGNED_TRAILER, SIGNED_TRAILER)
        if self._trailing and not announced_trailers:
            raise InvalidRequestError(f"{mode} requires an x-amz-trailer header.")
        self._mode = mode
        self._seed = seed
        self._announced = announced_trailers
        self._decoded_length = decoded_length
        self._previous = seed.signature if seed is not None else ""
        self._buffer = bytearray()
        self._state = "size"
        self._left = 0  # payload bytes still to come in the current chunk
        self._claimed = b""  # the current chunk's claimed signature
        self._chunk_hash = hashlib.sha256()
        self._decoded = 0
        self.trailers: dict[str, str] = {}

    def feed(self, raw: bytes) -> list[bytes]:
        """The payload bytes ``raw`` completes; raises on any deviation from the format."""
        self._buffer += raw
        out: list[bytes] = []
        while self._step(out):
            pass
        return out

    def finish(self) -> dict[str, str]:
        """At the end of the body: the trailers; raises if the body stopped short."""
        if self._state != "final" or bytes(self._buffer) != b"\r\n":
            if self._state == "final":
                raise IncompleteBodyError("aws-chunked: the body does not end after its last chunk.")
            raise IncompleteBodyError("aws-chunked: the body ends inside a chunk.")
        if self._decoded_length is not None and self._decoded_length != self._decoded:
            raise IncompleteBodyError(
                "The request body's decoded length does not match x-amz-decoded-content-length."
            )
        return self.trailers

    # One step of the state machine: False when it needs more bytes.

    def _step(self, out: list[bytes]) -> bool:
        state = self._state
        if state == "size":
            return self._chunk_header()
        if state == "data":
            return self._chunk_data(out)
        if state == "data_end":
            if len(self._buffer) < 2:
                return False
            if self._buffer[:2] != b"\r\n":
                raise IncompleteBodyError("aws-chunked: a chunk is not followed by CRLF.")
            del self._buffer[:2]
            self._state = "size"
            return True
        if state == "trailers":
            return self._trailer_line()
        if len(self._buffer) > 2 or not b"\r\n".startswith(bytes(self._buffer)):
            raise IncompleteBodyError("aws-chunked: the body does not end after its last chunk.")
        return False

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n", 0, _MAX_HEADER_LINE + 2)
        if end < 0:
            if len(self._buffer) > _MAX_HEADER_LINE:
                raise IncompleteBodyError("aws-chunked: a chunk header is missing or too long.")
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _chunk_header(self) -> bool:
        line = self._line()
        if line is None:
            return False
        size_part, _, extension = line.partition(b";")
        if not _HEX_SIZE.fullmatch(size_part):
            raise IncompleteBodyError("aws-chunked: a chunk size is not hexadecimal.")
        size = int(size_part, 16)
        if self._signed:
            name, _, value = extension.partition(b"=")
            if name != b"chunk-signature" or not _SIGNATURE.fullmatch(value):
                raise InvalidSignatureError("aws-chunked: a chunk has no valid chunk-signature.")
            self._claimed = value
        elif extension:
            raise IncompleteBodyError("aws-chunked: unexpected chunk extension.")
        if self._decoded_length is not None and self._decoded + size > self._decoded_length:
            raise IncompleteBodyError(
                "The request body's decoded length does not match x-amz-decoded-content-length."
            )
        self._chunk_hash = hashlib.sha256()
        self._left = size
        if size == 0:
            self._end_of_chunk()
            self._state = "trailers" if self._trailing else "final"
        else:
            self._state = "data"
        return True

    def _chunk_data(self, out: list[bytes]) -> bool:
        if not self._buffer:
            return False
        take = min(self._left, len(self._buffer))
        piece = bytes(self._buffer[:take])
        del self._buffer[:take]
        self._left -= take
        self._decoded += take
        if self._signed:
            self._chunk_hash.update(piece)
        out.append(piece)
        if self._left == 0:
            self._end_of_chunk()
            self._state = "data_end"
        return True

    def _end_of_chunk(self) -> None:
        if not self._signed:
            return
        assert self._seed is not None
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                self._seed.timestamp,
                self._seed.scope,
                self._previous,
                _EMPTY_SHA256,
                self._chunk_hash.hexdigest(),
            ]
        )
        expected = hmac.new(self._seed.key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), self._claimed):
            raise InvalidSignatureError("aws-chunked: a chunk signature does not match.")
        self._previous = expected

    def _trailer_line(self) -> bool:
        if self._buffer.startswith(b"\r\n"):  # the empty line that ends the trailers
            self._trailers_done()
            if self._mode == SIGNED_TRAILER:
                raise InvalidSignatureError("aws-chunked: the trailer signature is missing.")
            self._state = "final"
            return True
        line = self._line()
        if line is None:
            return False
        if line.startswith(_TRAILER_SIGNATURE):
            self._trailers_done()
            if self._mode != SIGNED_TRAILER:
                raise IncompleteBodyError("aws-chunked: the body does not end after its last chunk.")
            self._check_trailer_signature(line[len(_TRAILER_SIGNATURE) :])
            self._state = "final"
            return True
        name, sep, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if not sep or not _TRAILER_NAME.fullmatch(name) or name not in self._announced:
            raise InvalidArgumentError("aws-chunked: a trailer was not announced in x-amz-trailer.")
        if name in self.trailers or len(self.trailers) >= _MAX_TRAILERS:
            raise InvalidArgumentError("aws-chunked: a trailer is repeated.")
        self.trailers[name] = value.strip()
        return True

    def _trailers_done(self) -> None:
        missing = [name for name in self._announced if name not in self.trailers]
        if missing:
            raise IncompleteBodyError(f"aws-chunked: the trailer {missing[0]} was announced but not sent.")

    def _check_trailer_signature(self, value: bytes) -> None:
        assert self._seed is not None
        if not _SIGNATURE.fullmatch(value):
            raise InvalidSignatureError("aws-chunked: the trailer signature is missing.")
        canonical = "".join(f"{k}:{v}\n" for k, v in self.trailers.items())
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-TRAILER",
                self._seed.timestamp,
                self._seed.scope,
                self._previous,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        expected = hmac.new(self._seed.key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), value):
            raise InvalidSignatureError("aws-chunked: the trailer signature does not match.")


def decode(
    body: bytes,
    mode: str,
    *,
    seed: SigningSeed | None,
    announced_trailers: tuple[str, ...],
    decoded_length: int | None,
) -> DecodedBody:
    """The payload of a whole ``body`` sent in ``mode``; raises on any deviation from the format."""
    decoder = ChunkedDecoder(
        mode, seed=seed, announced_trailers=announced_trailers, decoded_length=decoded_length
    )
    data = b"".join(decoder.feed(body))
    return DecodedBody(data, decoder.finish())
