"""Token buckets: InvokeRestApi's ~10 TPS per environment and account."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable


class RateLimiter:
    """``rate`` requests per second per key, with a burst of one second's worth; rate 0 turns it off."""

    def __init__(
        self, rate: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._rate = rate
        self._capacity = max(rate, 1.0)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def try_acquire(self, key: Hashable) -> bool:
        """Take a token for ``key``; False (and nothing taken) when the bucket is empty."""
        if self._rate <= 0:
            return True
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - last) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                self._buckets.clear()  # bounded memory: forgetting buckets only ever admits more
            self._buckets[key] = (tokens - 1.0, now)
            return True
