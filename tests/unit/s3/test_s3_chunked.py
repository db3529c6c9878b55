"""aws-chunked decoding: AWS's published signed-chunk example, botocore's own unsigned-trailer bodies."""

from __future__ import annotations

import io

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from openmwaa.auth.sigv4 import signing_key
from openmwaa.errors import InvalidSignatureError
from openmwaa.pipeline.context import SigningSeed
from openmwaa.s3 import chunked
from openmwaa.s3.checksums import checksum_of
from openmwaa.s3.errors import IncompleteBodyError, InvalidArgumentError

# "Signature Calculations for the Authorization Header: Transferring Payload in Multiple Chunks"
# (Amazon S3 API reference): 66560 bytes of 'a' in chunks of 65536 and 1024.
SEED = SigningSeed(
    key=signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3"),
    timestamp="20130524T000000Z",
    scope="20130524/us-east-1/s3/aws4_request",
    signature="4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
)
SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)


def _signed_body(signatures: tuple[str, ...] = SIGNATURES) -> bytes:
    sizes = (65536, 1024, 0)
    parts = [
        f"{size:x};chunk-signature={sig}\r\n".encode() + b"a" * size + b"\r\n"
        for size, sig in zip(sizes, signatures, strict=True)
    ]
    return b"".join(parts)


def test_aws_example_signed_chunks_decode() -> None:
    decoded = chunked.decode(
        _signed_body(), chunked.SIGNED, seed=SEED, announced_trailers=(), decoded_length=66560
    )
    assert decoded.data == b"a" * 66560


def test_a_tampered_chunk_or_signature_is_refused() -> None:
    body = _signed_body()
    tampered = body[:100] + b"b" + body[101:]
    with pytest.raises(InvalidSignatureError):
        chunked.decode(tampered, chunked.SIGNED, seed=SEED, announced_trailers=(), decoded_length=66560)
    wrong = (SIGNATURES[0], SIGNATURES[2], SIGNATURES[1])
    with pytest.raises(InvalidSignatureError):
        chunked.decode(
            _signed_body(wrong), chunked.SIGNED, seed=SEED, announced_trailers=(), decoded_length=66560
        )


def test_truncated_and_trailing_garbage_bodies_are_refused() -> None:
    body = _signed_body()
    for broken in (body[:-2], body[:60000], body + b"x", b"zz\r\n" + body):
        with pytest.raises((IncompleteBodyError, InvalidSignatureError)):
            chunked.decode(broken, chunked.SIGNED, seed=SEED, announced_trailers=(), decoded_length=66560)
    with pytest.raises(IncompleteBodyError):
        chunked.decode(body, chunked.SIGNED, seed=SEED, announced_trailers=(), decoded_length=5)


def _botocore_trailer_body(data: bytes) -> bytes:
    wrapper = AwsChunkedWrapper(
        io.BytesIO(data), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32", chunk_size=1000
    )
    return bytes(wrapper.read())


def test_botocore_unsigned_trailer_body_decodes_with_its_checksum() -> None:
    data = bytes(range(256)) * 20
    decoded = chunked.decode(
        _botocore_trailer_body(data),
        chunked.UNSIGNED_TRAILER,
        seed=None,
        announced_trailers=("x-amz-checksum-crc32",),
        decoded_length=len(data),
    )
    assert decoded.data == data
    assert decoded.trailers == {"x-amz-checksum-crc32": checksum_of("crc32", data)}


def test_an_unannounced_trailer_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        chunked.decode(
            _botocore_trailer_body(b"abc"),
            chunked.UNSIGNED_TRAILER,
            seed=None,
            announced_trailers=("x-amz-checksum-sha256",),
            decoded_length=3,
        )


def test_crc32c_known_value() -> None:
    # The CRC-32C check value of "123456789" is 0xE3069283.
    assert checksum_of("crc32c", b"123456789") == "4waSgw=="


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_a_body_fed_in_pieces_decodes_as_a_whole(piece: int) -> None:
    """Uploads are decoded as they arrive: any split of the raw body gives the same payload."""
    signed = _signed_body()
    decoder = chunked.ChunkedDecoder(chunked.SIGNED, seed=SEED, announced_trailers=(), decoded_length=66560)
    out = b"".join(b"".join(decoder.feed(signed[i : i + piece])) for i in range(0, len(signed), piece))
    assert out == b"a" * 66560 and decoder.finish() == {}
    data = bytes(range(256)) * 20
    body = _botocore_trailer_body(data)
    decoder = chunked.ChunkedDecoder(
        chunked.UNSIGNED_TRAILER,
        seed=None,
        announced_trailers=("x-amz-checksum-crc32",),
        decoded_length=len(data),
    )
    out = b"".join(b"".join(decoder.feed(body[i : i + piece])) for i in range(0, len(body), piece))
    assert out == data
    assert decoder.finish() == {"x-amz-checksum-crc32": checksum_of("crc32", data)}


def test_a_body_longer_than_announced_is_refused_before_its_end() -> None:
    decoder = chunked.ChunkedDecoder(chunked.SIGNED, seed=SEED, announced_trailers=(), decoded_length=1000)
    with pytest.raises(IncompleteBodyError):
        decoder.feed(_signed_body()[:200])  # the first chunk header already says 65536 bytes
