"""How many web server replicas an environment wants: the autoscaling policy (pure, fake-clock tested).

The signal is the mean number of requests in flight over a window (Little's law: arrival rate
times latency), measured exactly from :meth:`ReplicaSet.busy_seconds`. One Airflow web server
serves one request at a time at full speed on this machine's cores (its ``/dags`` is CPU-bound),
so a mean of one or more per replica means requests queue: scale up, quickly (``up_window``).
Scale down only when the load of the last ``down_window`` (with no change in it) would fit in
fewer replicas at half that mean, and then straight to as many as it needs (at least the
minimum): back to MinWebservers within one window of the load stopping, whatever the count.
The gap between the two thresholds and the long window are the hysteresis that keeps the count
from flapping.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ScalingRules:
    #: Seconds of load averaged to decide to add replicas (and the least time between two changes).
    up_window: float = 5.0
    #: Seconds of sustained low load before replicas are drained.
    down_window: float = 90.0
    #: Mean requests in flight per replica at or above which replicas are added.
    up_threshold: float = 1.0
    #: Mean requests in flight per remaining replica at or below which replicas go.
    down_threshold: float = 0.5


class LoadWindow:
    """A running total of load-seconds, sampled: the mean load over any recent window.

    Shared by the web server and the worker policies (the load differs, the windowing does not).
    """

    def __init__(self, keep: float) -> None:
        #: Seconds of samples kept (the longest window asked for).
        self._keep = keep
        self._samples: deque[tuple[float, float]] = deque()

    def clear(self) -> None:
        self._samples.clear()

    def add(self, now: float, total: float) -> None:
        self._samples.append((now, total))
        horizon = now - self._keep - 1.0
        while len(self._samples) > 2 and self._samples[1][0] <= horizon:
            self._samples.popleft()

    def mean(self, now: float, window: float) -> float | None:
        """Mean load over the last ``window`` s (None until that much is observed)."""
        if not self._samples:
            return None
        start = now - window
        base = None
        for t, b in self._samples:
            if t <= start:
                base = (t, b)
            else:
                break
        if base is None or now <= base[0]:
            return None
        return (self._samples[-1][1] - base[1]) / (now - base[0])


class ScalingPolicy:
    def __init__(self, rules: ScalingRules | None = None) -> None:
        self.rules = rules or ScalingRules()
        self._load = LoadWindow(max(self.rules.up_window, self.rules.down_window))
        self._last_change: float | None = None

    def reset(self, now: float) -> None:
        """Forget the load seen so far (the environment was (re)started)."""
        self._load.clear()
        self._last_change = now

    def decide(self, now: float, busy_seconds: float, current: int, low: int, high: int) -> int:
        """The replica count wanted now, given the running total of busy request-seconds."""
        rules = self.rules
        if self._last_change is None:
            self._last_change = now
        self._load.add(now, busy_seconds)
        wanted = min(max(current, low), high)
        since_change = now - self._last_change
        up_mean = self._load.mean(now, rules.up_window)
        down_mean = self._load.mean(now, rules.down_window)
        busy_up = up_mean is not None and up_mean >= rules.up_threshold * wanted
        if busy_up and up_mean is not None and since_change >= rules.up_window and wanted < high:
            wanted = min(high, max(wanted + 1, math.ceil(up_mean / rules.up_threshold)))
        if down_mean is not None and wanted == current and since_change >= rules.down_window:
            # The fewest replicas that carry the window's load at down_threshold each.
            wanted = min(wanted, max(low, math.ceil(down_mean / rules.down_threshold)))
        if wanted != current:
            self._last_change = now
        return wanted
