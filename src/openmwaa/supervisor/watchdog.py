"""Hung components: alive as processes, but not doing their work.

A crashed component is noticed by its exit; a hung one (deadlocked, stopped, stuck on I/O)
never exits. Airflow's health endpoint notices it instead: a scheduler, triggerer or DAG
processor that stops heartbeating is reported unhealthy, and a web server that stops answering
cannot report at all. ``HangWatch`` turns a series of such observations into a verdict: a
component that has been failing continuously for ``timeout`` seconds is due for a restart.
Pure: the caller probes, keeps the time and does the restarting.
"""

from __future__ import annotations

from collections.abc import Collection


class HangWatch:
    def __init__(self, timeout: float) -> None:
        """``timeout`` <= 0 turns the watch off."""
        self._timeout = timeout
        self._failing_since: dict[str, float] = {}

    @property
    def timeout(self) -> float:
        return self._timeout

    @property
    def enabled(self) -> bool:
        return self._timeout > 0

    def observe(self, failing: Collection[str], now: float) -> list[str]:
        """Record one health observation; the components failing for ``timeout`` s, oldest first.

        A component reported is forgotten (its restart starts a new observation), as is any
        component not failing in this observation: only an unbroken run of failures counts.
        """
        if not self.enabled:
            return []
        self._failing_since = {name: self._failing_since.get(name, now) for name in failing}
        due = sorted(
            (since, name) for name, since in self._failing_since.items() if now - since >= self._timeout
        )
        for _, name in due:
            del self._failing_since[name]
        return [name for _, name in due]

    def reset(self) -> None:
        """Forget every observation (components were restarted, or the environment is not AVAILABLE)."""
        self._failing_since.clear()
