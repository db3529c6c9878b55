"""How many Celery workers an environment wants: MWAA's worker autoscaling (pure, fake-clock tested).

MWAA sizes the worker fleet from two figures, the tasks queued and the tasks running:
``ceil((queued + running) / tasks per worker)`` workers are wanted, between MinWorkers and
MaxWorkers. It adds workers while tasks queue, and removes the extra ones only once nothing
is queued or running. This policy does the same:

- Up: as soon as a count of ``queued + running`` needs more workers than run, the count jumps
  to what it needs (at most MaxWorkers), at once rather than one worker at a time, also right
  after the environment (re)started; after a change, the next addition waits at least
  ``up_window`` (the workers just added take that long to start and take tasks). A queued
  task is work waiting for a slot, not a passing spike of requests, so it is not averaged
  away: a burst of 40 three-second tasks wants its workers now, and a mean over a window
  would add the last of them only as the burst ends.
- Down: nothing was queued or running at any sample for ``down_window``, and nothing changed
  for as long; the count drops to MinWorkers at once (each extra worker drains, see
  worker_replicas).

A count never drops while any task runs: the long idle window is the hysteresis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from openmwaa.supervisor.web_scaling import LoadWindow


@dataclass(frozen=True)
class WorkerScalingRules:
    #: The least seconds between a change of the count and the next addition of workers.
    up_window: float = 10.0
    #: Seconds without any task queued or running before the extra workers go.
    down_window: float = 120.0


@dataclass(frozen=True)
class TaskCounts:
    """Task instances the environment's executor has queued, and that run on its workers."""

    queued: int
    running: int

    @property
    def total(self) -> int:
        return self.queued + self.running


class WorkerScalingPolicy:
    def __init__(self, rules: WorkerScalingRules | None = None) -> None:
        self.rules = rules or WorkerScalingRules()
        self._load = LoadWindow(max(self.rules.up_window, self.rules.down_window))
        self._task_seconds = 0.0
        self._last: tuple[float, int] | None = None
        self._last_change: float | None = None
        #: No workers are added before this (the ones added last are still starting).
        self._up_after = -math.inf

    def reset(self, now: float) -> None:
        """Forget the load seen so far (the environment was (re)started). Tasks queued right
        away get their workers at once; the idle window starts now."""
        self._load.clear()
        self._last = None
        self._last_change = now
        self._up_after = now

    def forget_load(self) -> None:
        """The load could not be read: decide nothing from what came before the gap."""
        self._load.clear()
        self._last = None

    def decide(
        self, now: float, tasks: TaskCounts | None, *, per_worker: int, current: int, low: int, high: int
    ) -> int:
        """The worker count wanted now; ``tasks`` None (unknown) keeps ``current`` (within the bounds)."""
        rules = self.rules
        if self._last_change is None:
            self._last_change = now
        wanted = min(max(current, low), high)
        if tasks is None:
            self.forget_load()
        else:
            self._sample(now, tasks.total)
            since_change = now - self._last_change
            down_mean = self._load.mean(now, rules.down_window)
            needed = math.ceil(tasks.total / max(1, per_worker))
            if needed > wanted and now >= self._up_after:
                wanted = min(high, needed)
            idle = down_mean == 0.0 and tasks.total == 0
            if not needed > wanted and idle and wanted == current and since_change >= rules.down_window:
                wanted = low
        if wanted != current:
            self._last_change = now
            self._up_after = now + rules.up_window
        return wanted

    def _sample(self, now: float, total: int) -> None:
        """Integrate the task count (held since the previous sample) into task-seconds."""
        if self._last is not None:
            then, before = self._last
            self._task_seconds += before * max(0.0, now - then)
        else:
            self._load.clear()  # the first sample after a gap starts a new series
        self._last = (now, total)
        self._load.add(now, self._task_seconds)
