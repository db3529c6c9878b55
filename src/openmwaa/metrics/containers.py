"""``AWS/MWAA`` container metrics, sampled from the environments' processes every ``interval`` s.

Per environment: CPUUtilization and MemoryUtilization (percent of this machine) with the
``Cluster`` dimension (``WebServer``, ``Scheduler``, ``BaseWorker``) and the ``Environment``;
NumWebServers, NumSchedulers and NumWorkers (tasks run in the scheduler's LocalExecutor here,
so one worker while a scheduler runs). The first sample of an environment only sets the CPU
baseline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from openmwaa.metrics.recorder import EnvironmentRef, MetricRecorder, environment_series
from openmwaa.metrics.statsd import CONTAINER_NAMESPACE
from openmwaa.supervisor.proc import PROC, all_stats
from openmwaa.supervisor.usage import (
    SCHEDULER,
    WEB_SERVER,
    WORKER,
    ProcessSample,
    cpu_percent,
    memory_percent,
    sample_environment,
    total_memory,
)

log = logging.getLogger(__name__)
KINDS = (WEB_SERVER, SCHEDULER, WORKER)


class ContainerSampler:
    def __init__(
        self,
        recorder: MetricRecorder,
        environments: Callable[[], Iterable[tuple[EnvironmentRef, Path]]],
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.time,
        proc: Path = PROC,
    ) -> None:
        """``environments``: the running environments and their home directories."""
        self._recorder = recorder
        self._environments = environments
        self._interval = interval
        self._clock = clock
        self._proc = proc
        self._previous: dict[EnvironmentRef, tuple[float, tuple[ProcessSample, ...]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        """One round over every running environment."""
        now = self._clock()
        stats = all_stats(self._proc)
        memory = total_memory(self._proc)
        seen = set()
        for ref, home in self._environments():
            seen.add(ref)
            usage = sample_environment(home, self._proc, stats)
            previous = self._previous.get(ref)
            self._previous[ref] = (now, usage.processes)

            values: list[tuple[str, float, str, dict[str, str]]] = []
            for kind in KINDS:
                cluster = {"Cluster": kind}
                if previous is not None:
                    cpu = cpu_percent(previous[1], usage.processes, now - previous[0], kind)
                    values.append(("CPUUtilization", cpu, "Percent", cluster))
                memory_used = memory_percent(usage.processes, kind, memory)
                values.append(("MemoryUtilization", memory_used, "Percent", cluster))
            schedulers = usage.replicas.get(SCHEDULER, 0)
            values += [
                ("NumWebServers", usage.replicas.get(WEB_SERVER, 0), "Count", {}),
                ("NumSchedulers", schedulers, "Count", {}),
                ("NumWorkers", 1 if schedulers else 0, "Count", {}),
            ]
            for name, value, unit, dims in values:
                series = environment_series(ref, CONTAINER_NAMESPACE, name, dims)
                self._recorder.record(series, value, unit, now)
        for gone in set(self._previous) - seen:
            del self._previous[gone]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metrics-containers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:  # - sampling again next time is the right recovery
                log.exception("metrics: sampling the environments' processes failed")
            if self._stop.wait(self._interval):
                return
