"""One HTTP/1.1 connection to Airflow: an asyncio protocol around httptools' C parser (llhttp).

The request goes out in one write (or as its stream comes), the answer is parsed as it arrives
and handed over chunk by chunk, and reading pauses while ``HIGH_WATER`` bytes wait unread.

The parser is bounded: httptools buffers a header's name and value until the value ends, so an
answer's non-body bytes (status line, headers, interim 1xx answers, chunk framing, trailers) are
fed to it in slices, and ``MAX_FRAMING_BYTES`` of them without a byte of body in between fail the
answer (``ResponseHeadTooLarge``), as do more than ``MAX_HEADERS`` header lines. Trailers are
read past, never added to the head. A body with neither ``content-length`` nor chunked framing
ends where the server closes the connection (RFC 9112, 6.3), and that close completes it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Final, cast

import httptools

from openmwaa.upstream.errors import (
    ClosedBeforeAnswer,
    ResponseHeadTooLarge,
    UpstreamError,
    UpstreamUnreachable,
)

#: Unread answer bytes at which reading from Airflow pauses.
HIGH_WATER: Final = 1 << 20
#: Bytes of an answer that are not body (head, 1xx answers, chunk framing, trailers) in a row.
MAX_FRAMING_BYTES: Final = 64 * 1024
#: Header lines in an answer (interim answers and trailers included).
MAX_HEADERS: Final = 100

RawHeaders = list[tuple[bytes, bytes]]


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing (httptools wraps it)."""


class Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, on_closed: Callable[[], None] | None = None) -> None:
        self.loop = loop
        self.idle_since = 0.0
        self._on_closed = on_closed
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._closed = False
        self._busy = False
        self._can_write: asyncio.Future[None] | None = None
        self._begin(head_only=False)

    def _begin(self, *, head_only: bool) -> None:
        self._head_only = head_only
        self._head: asyncio.Future[tuple[int, RawHeaders]] | None = None
        self._headers: RawHeaders = []
        self._header_count = 0
        self._head_done = False
        self._eof_delimited = False
        self._framing = 0
        self._body_seen = 0
        self._refusal: UpstreamError | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._complete = False
        self._error: UpstreamError | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._answered = False

    # asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's isn't a registered subclass

    def data_received(self, data: bytes) -> None:
        self._answered = True
        if not self._busy or self._complete or self._error is not None:  # a server talking out of turn
            self.close()
            return
        while data and not self._complete and self._error is None:
            room = MAX_FRAMING_BYTES - self._framing
            if room <= 0:
                self._fail(ResponseHeadTooLarge(f"more than {MAX_FRAMING_BYTES} bytes of head or framing"))
                return
            piece, data = data[:room], data[room:]
            self._body_seen = 0
            try:
                self._parser.feed_data(piece)
            except httptools.HttpParserError as exc:
                self._fail(self._refusal or UpstreamUnreachable(f"not an HTTP/1.1 answer: {exc}"))
                return
            # Non-body bytes since the last body byte (counted from the piece's start when it held body).
            framing = len(piece) - self._body_seen
            self._framing = framing if self._body_seen else self._framing + framing
        if data and self._complete:  # bytes after the answer: the server talked out of turn
            self._closed = True

    def eof_received(self) -> bool:
        self._closed = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._release()
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        if self._busy and not self._complete:
            if exc is None and self._head_done and self._eof_delimited and self._error is None:
                self._finish_message()  # the body ran to the close, as its framing says
            elif self._answered:
                self._fail(UpstreamUnreachable("the connection closed in the middle of the answer"))
            else:
                self._fail(ClosedBeforeAnswer("the connection closed before any answer"))

    def pause_writing(self) -> None:
        self._can_write = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    # httptools callbacks -----------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refusal = ResponseHeadTooLarge(f"more than {MAX_HEADERS} header lines")
            raise _Refused()
        if not self._head_done:  # after the head: trailers, read past
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._headers = []
            return
        self._head_done = True
        self._eof_delimited = _delimited_by_close(self._headers)
        if self._head is not None and not self._head.done():
            self._head.set_result((status, self._headers))
        if self._head_only:  # a HEAD answer has no body whatever its content-length says
            self._closed = True
            self._finish_message()

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        self._wake()

    def on_message_complete(self) -> None:
        if self._parser.get_status_code() < 200:
            return
        if not self._parser.should_keep_alive():
            self._closed = True
        self._finish_message()

    def _finish_message(self) -> None:
        self._complete = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    def _release(self) -> None:
        on_closed, self._on_closed = self._on_closed, None
        if on_closed is not None:
            on_closed()

    # Use ------------------------------------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        return not self._closed and not self._busy and self._transport is not None

    @property
    def complete(self) -> bool:
        """The whole answer has arrived (it may still wait unread)."""
        return self._complete

    async def send(
        self, head: bytes, body: bytes | AsyncIterator[bytes] | None, *, chunked: bool, head_only: bool
    ) -> None:
        assert self._transport is not None and not self._busy
        self._busy = True
        self._begin(head_only=head_only)
        self._head = self.loop.create_future()
        if isinstance(body, bytes) or body is None:
            self._transport.write(head + (body or b""))
            return
        self._transport.write(head)
        async for chunk in body:
            if self._error is not None:
                raise self._error
            if chunk:
                self._transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            if self._can_write is not None:
                await self._can_write
        if chunked:
            self._transport.write(b"0\r\n\r\n")

    async def head(self) -> tuple[int, RawHeaders]:
        assert self._head is not None
        return await self._head

    async def read_chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < HIGH_WATER // 2 and self._transport is not None:
                    self._transport.resume_reading()
                    self._paused = False
                return chunk
            if self._error is not None:
                raise self._error
            if self._complete:
                return None
            self._wakeup = self.loop.create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None

    def done(self) -> bool:
        """End the exchange; True when the connection can serve another request."""
        finished = self._complete and self._error is None and not self._chunks
        if not finished or self._closed:
            self.close()  # while still busy: an unread or broken answer aborts the connection
        self._busy = False
        return finished and not self._closed

    def close(self) -> None:
        self._closed = True
        if self._transport is None:
            self._release()
            return
        if self._busy and not self._complete:  # in the middle of an exchange: nothing more may be read
            self._transport.abort()
        else:
            self._transport.close()
        self._release()


def _delimited_by_close(headers: RawHeaders) -> bool:
    """No content-length and no chunked framing: the body is what comes until the server closes."""
    chunked = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            return False
        if lowered == b"transfer-encoding":
            chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
    return not chunked
