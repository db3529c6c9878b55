"""When to restart a crashed component, and when crashes have become a crash loop (pure)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    base_delay: float = 1.0
    max_delay: float = 60.0
    #: ``max_restarts`` crashes within ``window`` seconds make a crash loop.
    window: float = 120.0
    max_restarts: int = 5


@dataclass(frozen=True)
class CrashVerdict:
    #: Seconds to wait before starting the component again.
    delay: float
    #: Crashes within the window, this one included.
    recent: int
    crash_loop: bool


@dataclass
class CrashTracker:
    """Crash history of one component; feed it monotonic timestamps."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    _crashes: deque[float] = field(default_factory=deque)

    def record_crash(self, now: float) -> CrashVerdict:
        self._crashes.append(now)
        self._forget_before(now - self.policy.window)
        recent = len(self._crashes)
        delay = min(self.policy.max_delay, self.policy.base_delay * 2 ** (recent - 1))
        return CrashVerdict(delay=delay, recent=recent, crash_loop=recent >= self.policy.max_restarts)

    def _forget_before(self, cutoff: float) -> None:
        while self._crashes and self._crashes[0] < cutoff:
            self._crashes.popleft()
