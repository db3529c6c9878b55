"""The running components of one environment and their crash history.

It starts, watches and restarts processes through two callables, so the restart and
crash-loop rules are tested with fake processes and a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from openmwaa.supervisor.backoff import CrashTracker, CrashVerdict, RestartPolicy
from openmwaa.supervisor.components import ComponentSpec


class ProcessHandle(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def pid(self) -> int: ...
    @property
    def log_path(self) -> Path: ...
    def poll(self) -> int | None: ...


StartFn = Callable[[ComponentSpec, float], ProcessHandle]
StopFn = Callable[[Sequence[ProcessHandle]], None]


@dataclass(frozen=True)
class Crash:
    component: str
    exit_code: int
    log_path: Path
    verdict: CrashVerdict


class ComponentGroup:
    def __init__(self, start: StartFn, stop: StopFn, policy: RestartPolicy | None = None) -> None:
        self._start = start
        self._stop = stop
        self._policy = policy or RestartPolicy()
        self._specs: dict[str, ComponentSpec] = {}
        self._running: dict[str, ProcessHandle] = {}
        self._restart_at: dict[str, float] = {}
        self._trackers: dict[str, CrashTracker] = {}
        #: Retired replicas still running (a worker finishing its tasks): never restarted,
        #: reaped once they exit, stopped with everything else.
        self._retiring: dict[str, ProcessHandle] = {}

    @property
    def policy(self) -> RestartPolicy:
        return self._policy

    @property
    def running(self) -> dict[str, ProcessHandle]:
        return dict(self._running)

    @property
    def retiring(self) -> dict[str, ProcessHandle]:
        return dict(self._retiring)

    def specs(self) -> list[ComponentSpec]:
        return list(self._specs.values())

    def in_use(self, name: str) -> bool:
        """A component of that name is defined, or a retired one still runs (its pid file and log)."""
        return name in self._specs or name in self._retiring

    def start(self, specs: Sequence[ComponentSpec], now: float) -> None:
        """Start ``specs`` (replacing the definitions of those names); others keep running."""
        for spec in specs:
            self._specs[spec.name] = spec
            self._restart_at.pop(spec.name, None)
            self._running[spec.name] = self._start(spec, now)

    def stop(self, names: Sequence[str] | None = None) -> None:
        """Stop the named components (all when None); they are not restarted."""
        chosen = list(self._specs) if names is None else list(names)
        handles = [self._running.pop(n) for n in chosen if n in self._running]
        for name in chosen:
            self._restart_at.pop(name, None)
            if names is None:
                self._specs.pop(name, None)
        if names is None:
            self._trackers.clear()
            handles += self._retiring.values()
            self._retiring.clear()
        self._stop(handles)

    def remove(self, names: Sequence[str]) -> None:
        """Stop the named components and forget them (a web server replica scaled in or replaced)."""
        self.stop(names)
        for name in names:
            self._specs.pop(name, None)
            self._trackers.pop(name, None)

    def retire(self, names: Sequence[str]) -> list[ProcessHandle]:
        """Forget the named components but leave them running (the caller asks them to end):
        they are never restarted, and are reaped when they exit. The handles that run."""
        handles = []
        for name in names:
            self._specs.pop(name, None)
            self._restart_at.pop(name, None)
            self._trackers.pop(name, None)
            handle = self._running.pop(name, None)
            if handle is not None:
                self._retiring[name] = handle
                handles.append(handle)
        return handles

    def stop_retired(self, names: Sequence[str]) -> None:
        """Stop retired components now (they took too long to end by themselves)."""
        handles = [self._retiring.pop(n) for n in names if n in self._retiring]
        if handles:  # stopping nothing still scans /proc for leftovers: every tick, on every reconcile
            self._stop(handles)

    def exited(self) -> list[tuple[str, int]]:
        """Components that have exited and not been handled yet (start-up checks use this)."""
        return [(n, code) for n, h in self._running.items() if (code := h.poll()) is not None]

    def all_running(self) -> bool:
        return bool(self._specs) and not self._restart_at and not self.exited()

    def reconcile(self, now: float) -> list[Crash]:
        """Notice crashes (scheduling restarts with backoff) and start what is due; the crashes seen."""
        ended = [n for n, h in self._retiring.items() if h.poll() is not None]
        self.stop_retired(ended)  # reap what they left behind
        crashes = []
        for name, code in self.exited():
            handle = self._running.pop(name)
            self._stop([handle])  # reap what it left behind before a new one starts
            verdict = self._trackers.setdefault(name, CrashTracker(self._policy)).record_crash(now)
            self._restart_at[name] = now + verdict.delay
            crashes.append(Crash(name, code, handle.log_path, verdict))
        for name, due in list(self._restart_at.items()):
            if now >= due:
                del self._restart_at[name]
                self._running[name] = self._start(self._specs[name], now)
        return crashes
