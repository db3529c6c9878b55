"""What can go wrong on the way to Airflow: every failure of the upstream client is one of these."""

from __future__ import annotations


class UpstreamError(Exception):
    """The request got no usable answer."""


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamUnreachable(UpstreamError):
    """Connecting failed, the connection broke, or the answer was not HTTP/1.1."""


class ConnectFailed(UpstreamUnreachable):
    """No connection could be made: nothing of the request was sent."""


class ResponseTooLarge(UpstreamError):
    """The answer's body exceeds what the caller reads."""


class ResponseHeadTooLarge(UpstreamUnreachable):
    """The answer's head (or its trailers, or its chunk framing) exceeds the parser's bounds."""


class RequestAbandoned(UpstreamError):
    """The caller went away while its request waited for its turn; it was never sent."""


class ClosedBeforeAnswer(UpstreamUnreachable):
    """The server closed the connection without a byte of answer (may be retried when reused)."""
