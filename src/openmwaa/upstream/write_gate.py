"""One write at a time per Airflow API server.

Airflow 3's API server writes its audit log (``action_logging``) with a synchronous database
session on its event loop. Two concurrent writes then deadlock on a SQLite metadata database:
the first holds the write lock and needs the event loop to reach its commit, the second blocks
the event loop waiting for that lock, until SQLite's busy timeout fails it with a 500 five
seconds later. openmwaa therefore lets one unsafe request (anything but GET, HEAD, OPTIONS) at a
time reach a given API server; reads are never held back. The same gate serves InvokeRestApi and
the web endpoints, which run on different event loops, so it is a FIFO lock across threads.

A web client that goes away while its write waits here leaves the queue (``acquire_unless``):
nothing of it reached Airflow, so nothing needs the gate.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Final

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class WriteGate:
    """A first-come-first-served lock for coroutines, usable from any event loop."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[_Waiter] = deque()

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._mutex:
            if not self._held:
                self._held = True
                return
            waiter: _Waiter = (loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            await waiter[1]
        except asyncio.CancelledError:
            with self._mutex:
                if waiter in self._waiters:  # never handed the gate
                    self._waiters.remove(waiter)
                    raise
            if waiter[1].done() and not waiter[1].cancelled():  # handed it, then cancelled
                self.release()
            # else: the hand-over is still queued on our loop; _grant sees the cancel and passes it on
            raise

    async def acquire_unless(self, gone: asyncio.Event | None) -> bool:
        """Wait for the gate unless ``gone`` is set first: True when held, False when given up.

        A caller that went away leaves the queue at once, never holding the gate (if the gate
        was handed over at the same moment, it is passed on).
        """
        if gone is None:
            await self.acquire()
            return True
        if gone.is_set():
            return False
        acquiring = asyncio.ensure_future(self.acquire())
        giving_up = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait((acquiring, giving_up), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled while waiting: hold nothing
            giving_up.cancel()
            self._abandon(acquiring)
            raise
        giving_up.cancel()
        if acquiring.done() and not gone.is_set():
            acquiring.result()
            return True
        self._abandon(acquiring)
        return False

    def _abandon(self, acquiring: asyncio.Future[None]) -> None:
        if not acquiring.done():
            acquiring.cancel()  # acquire's own cancel handling leaves the queue or passes the gate on
        elif not acquiring.cancelled() and acquiring.exception() is None:
            self.release()

    def release(self) -> None:
        with self._mutex:
            if not self._waiters:
                self._held = False
                return
            loop, future = self._waiters.popleft()
        try:
            loop.call_soon_threadsafe(self._grant, future)
        except RuntimeError:  # that loop has closed: pass the gate on
            self.release()

    def _grant(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self.release()
        else:
            future.set_result(None)


class WriteGates:
    """The gate of each upstream origin (``host:port``), created on first use."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._gates: dict[str, WriteGate] = {}

    def gate(self, origin: str) -> WriteGate:
        with self._mutex:
            gate = self._gates.get(origin)
            if gate is None:
                gate = self._gates[origin] = WriteGate()
            return gate
