"""Fuzzing the upstream response parser: whatever a server sends, the answer is a body or an
``UpstreamError``, never another exception, and memory stays bounded whatever the volume.

Each case drives ``Connection`` as asyncio would (``data_received`` in pieces, then the close,
clean or reset) through a transport that records what the protocol asks of it, and respects
``pause_reading`` as a real transport does.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openmwaa.upstream.connection import HIGH_WATER, MAX_FRAMING_BYTES, Connection
from openmwaa.upstream.errors import UpstreamError

REQUEST = b"GET / HTTP/1.1\r\nhost: 127.0.0.1:1\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: Connection) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self.closed = False
        self.paused = False

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.abort()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.call_soon(self._protocol.connection_lost, None)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


async def exchange(pieces: Iterator[bytes], *, reset: bool = False, head_only: bool = False) -> str:
    """Feed the pieces as a server would, close, and read the answer: 'answer' or 'error'."""
    loop = asyncio.get_running_loop()
    connection = Connection(loop)
    transport = RecordingTransport(loop, connection)
    connection.connection_made(transport)
    await connection.send(REQUEST, None, chunked=False, head_only=head_only)
    reading = asyncio.ensure_future(read_all(connection))
    for piece in pieces:
        if transport.closed:
            break
        while transport.paused and not reading.done():
            await asyncio.sleep(0)  # the reader drains; a real transport would not read meanwhile
        connection.data_received(piece)
        await asyncio.sleep(0)
    if not transport.closed:
        transport.closed = True
        connection.connection_lost(ConnectionResetError() if reset else None)
    try:
        await asyncio.wait_for(reading, 5)
    except UpstreamError:
        return "error"
    return "answer"


async def read_all(connection: Connection) -> int:
    await connection.head()
    size = 0
    while (chunk := await connection.read_chunk()) is not None:
        size += len(chunk)
    return size


def split(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        yield data[last:cut]
        last = cut
    yield data[last:]


# A server's answer, assembled from the parts that decide its framing, then damaged at random.
_NAMES = st.sampled_from(
    [b"content-length", b"transfer-encoding", b"connection", b"x-a", b"set-cookie", b"Content-Length", b""]
)
_VALUES = st.one_of(
    st.sampled_from([b"0", b"5", b"-1", b"99999999999999999999", b"chunked", b"gzip, chunked", b"close"]),
    st.binary(max_size=40),
)
_CHUNKED_BODY = st.lists(st.binary(max_size=30), max_size=5).map(
    lambda parts: b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
)
_ANSWERS = st.builds(
    lambda version, status, reason, headers, body: (
        version
        + b" "
        + status
        + b" "
        + reason
        + b"\r\n"
        + b"".join(n + b": " + v + b"\r\n" for n, v in headers)
        + b"\r\n"
        + body
    ),
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"ICY"]),
    st.sampled_from([b"200", b"204", b"100", b"103", b"304", b"999", b"2x0", b"1000"]),
    st.binary(max_size=20),
    st.lists(st.tuples(_NAMES, _VALUES), max_size=8),
    st.one_of(_CHUNKED_BODY, st.binary(max_size=100)),
)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    answer = bytearray(draw(st.one_of(_ANSWERS, st.lists(_ANSWERS, max_size=3).map(b"".join))))
    for _ in range(draw(st.integers(0, 3))):
        if not answer:
            break
        at = draw(st.integers(0, len(answer) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            answer[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del answer[at:]
        else:
            answer[at:at] = draw(st.sampled_from([b"\r\n", b"\n", b"\x00", b":", b" ", b"\r\n\r\n"]))
    return bytes(answer)


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(damaged(), st.lists(st.integers(0, 10_000), max_size=6), st.booleans(), st.booleans())
def test_any_answer_is_a_body_or_an_upstream_error(
    data: bytes, cuts: list[int], reset: bool, head: bool
) -> None:
    assert asyncio.run(exchange(split(data, cuts), reset=reset, head_only=head)) in ("answer", "error")


@FUZZ
@given(st.binary(max_size=3000), st.lists(st.integers(0, 10_000), max_size=6), st.booleans())
def test_any_bytes_are_a_body_or_an_upstream_error(data: bytes, cuts: list[int], reset: bool) -> None:
    assert asyncio.run(exchange(split(data, cuts), reset=reset)) in ("answer", "error")


PIECE = b"a" * 65536
VOLUME = 8 * 1024 * 1024  # many times every bound


def endless(start: bytes, filler: bytes = PIECE) -> Iterator[bytes]:
    yield start
    for _ in range(VOLUME // len(filler)):
        yield filler


@pytest.mark.parametrize(
    ("name", "pieces", "outcome"),
    [
        ("a header value", lambda: endless(b"HTTP/1.1 200 OK\r\nx-a: "), "error"),
        ("header lines", lambda: endless(b"HTTP/1.1 200 OK\r\n", b"x-a: 1\r\n" * 8192), "error"),
        ("a reason phrase", lambda: endless(b"HTTP/1.1 200 "), "error"),
        ("interim answers", lambda: endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 2048), "error"),
        (
            "a trailer",
            lambda: endless(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nx-t: "),
            "error",
        ),
        (
            "a chunk extension",
            lambda: endless(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;e="),
            "error",
        ),
        ("a body to the close", lambda: endless(b"HTTP/1.1 200 OK\r\n\r\n"), "answer"),
    ],
)
def test_memory_stays_bounded_whatever_the_volume(name: str, pieces: Any, outcome: str) -> None:
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        got = asyncio.run(exchange(pieces()))
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    assert got == outcome
    # The bounds (head and framing, unread body) plus a piece in flight, far below the 8 MiB sent.
    assert peak < HIGH_WATER + 2 * MAX_FRAMING_BYTES + 4 * len(PIECE), f"{name}: {peak} bytes"
