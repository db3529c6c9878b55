"""Waiting on the event loop for an environment's status to change.

Statuses change on the supervisor's threads (its events) and on the API's; a coroutine that
waits for one (InvokeRestApi while an environment starts) must neither poll nor block the loop.
Each key has a generation, bumped by every change: a waiter reads the generation, then the
record, then waits for a generation past the one it read, so a change between the read and the
wait is never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class StatusWatch:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generations: dict[str, int] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def generation(self, key: str) -> int:
        with self._lock:
            return self._generations.get(key, 0)

    def changed(self, key: str) -> None:
        """Record a change of ``key``'s status and wake its waiters (callable from any thread)."""
        with self._lock:
            self._generations[key] = self._generations.get(key, 0) + 1
            waiters = self._waiters.pop(key, [])
        for future in waiters:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits any more
                future.get_loop().call_soon_threadsafe(_wake, future)

    async def wait(self, key: str, since: int, timeout: float) -> bool:
        """Wait until ``key`` has changed after generation ``since``; False when ``timeout`` passes first."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._generations.get(key, 0) != since:
                return True
            self._waiters.setdefault(key, []).append(future)
        try:
            await asyncio.wait_for(future, max(0.0, timeout))
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiting = self._waiters.get(key, [])
                if future in waiting:
                    waiting.remove(future)
                    if not waiting:
                        del self._waiters[key]
        return True

    def waiting(self, key: str) -> int:
        """How many coroutines wait for ``key`` right now."""
        with self._lock:
            return len(self._waiters.get(key, []))


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
