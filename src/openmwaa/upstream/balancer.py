"""Spreading one environment's requests over its web server replicas: least requests in flight.

A :class:`ReplicaSet` holds the replicas in rotation (base URLs such as ``http://127.0.0.1:8080``)
and how many requests each holds. The supervisor adds a replica once it answers its health
check and takes it out the moment it stops, crashes or hangs; a caller that cannot reach one
takes it out too (:meth:`ReplicaSet.mark_down`), so the next request goes elsewhere at once.
A replica being scaled in is *draining*: it gets no new requests and the supervisor stops it
once the ones it holds have finished.

Callers on several event loops and the supervisor's thread share one set, so every method
takes a lock; none blocks for longer than that.

The set also keeps the time integral of the requests in flight (:meth:`busy_seconds`): its
change over a period divided by the period is the mean number of requests in flight, the
autoscaler's signal, with no sampling that could miss short requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from openmwaa.upstream.errors import ConnectFailed, UpstreamError, UpstreamUnreachable
from openmwaa.upstream.write_gate import SAFE_METHODS


class Lease:
    """One request's hold on a replica; release it (or leave the ``with`` block) when the answer is done."""

    __slots__ = ("_owner", "url")

    def __init__(self, owner: ReplicaSet | None, url: str) -> None:
        self._owner = owner
        self.url = url

    def release(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._release(self.url)

    def failed(self) -> None:
        """The replica could not be reached: out of rotation until the supervisor sees it answer."""
        owner = self._owner
        if owner is not None:
            owner.mark_down(self.url)
        self.release()

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lease({self.url!r})"


def retry_elsewhere(method: str, exc: UpstreamError) -> bool:
    """Whether a request that failed so may go to another replica: nothing of it was sent, or
    it is a read that got no answer (the replica died under it)."""
    if isinstance(exc, ConnectFailed):
        return True
    return method in SAFE_METHODS and isinstance(exc, UpstreamUnreachable)


def untracked_lease(url: str) -> Lease:
    """A lease on ``url`` that no set counts (a single web server known only by its URL)."""
    return Lease(None, url)


class ReplicaSet:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rotation: list[str] = []
        self._in_flight: dict[str, int] = {}
        self._next = 0
        self._total = 0
        self._busy = 0.0
        self._since = clock()

    # The supervisor's side ---------------------------------------------------------------

    def add(self, url: str) -> None:
        """Put ``url`` in rotation (no-op if it is)."""
        with self._lock:
            if url not in self._rotation:
                self._rotation.append(url)
                self._in_flight.setdefault(url, 0)

    def remove(self, url: str) -> None:
        """Take ``url`` out of rotation: no new request goes there; those it holds finish."""
        with self._lock:
            if url in self._rotation:
                self._rotation.remove(url)

    #: A caller could not reach the replica: the same as :meth:`remove`, until it answers again.
    mark_down = remove

    def clear(self) -> None:
        with self._lock:
            self._rotation.clear()

    def members(self) -> list[str]:
        with self._lock:
            return list(self._rotation)

    def in_flight(self, url: str) -> int:
        with self._lock:
            return self._in_flight.get(url, 0)

    def busy_seconds(self) -> float:
        """The integral over time of the requests in flight (request-seconds) until now."""
        with self._lock:
            self._account()
            return self._busy

    # The callers' side -------------------------------------------------------------------

    def acquire(self, exclude: frozenset[str] = frozenset()) -> Lease | None:
        """A lease on the replica in rotation with the fewest requests in flight (None if none).

        Ties go round-robin, so an idle environment still spreads its requests.
        """
        with self._lock:
            candidates = [u for u in self._rotation if u not in exclude]
            if not candidates:
                return None
            start = self._next % len(candidates)
            self._next += 1
            ordered = candidates[start:] + candidates[:start]
            url = min(ordered, key=lambda u: self._in_flight.get(u, 0))
            self._account()
            self._in_flight[url] = self._in_flight.get(url, 0) + 1
            self._total += 1
            return Lease(self, url)

    def _release(self, url: str) -> None:
        with self._lock:
            self._account()
            self._in_flight[url] = max(0, self._in_flight.get(url, 0) - 1)
            self._total = max(0, self._total - 1)

    def _account(self) -> None:
        now = self._clock()
        self._busy += self._total * max(0.0, now - self._since)
        self._since = now
