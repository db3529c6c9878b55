"""What a process's threads are doing during a load: on a CPU (or waiting for one), or asleep where.

A web server with requests in flight that is neither running nor runnable is waiting on
something other than the CPU. Sampling ``/proc/<pid>/task/*/stat`` (the state letter) and
``.../wchan`` (the kernel function a sleeping thread waits in) tells which: ``do_nanosleep`` is
a timed sleep (SQLite's busy handler waiting for a lock sleeps so), ``futex_*`` a lock or a
condition (the GIL, an idle thread pool), ``do_epoll_wait`` an event loop with nothing to do.

A background thread samples every ``interval`` seconds; reading a few dozen small files a
sample costs the load generator little.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from openmwaa.supervisor.proc import PROC

#: Where idle threads wait whatever the load (an event loop, a thread pool, a ``select`` with a
#: timeout): left out of the wait counts. Compiler suffixes (``.constprop.0``) are ignored.
IDLE_WAITS = frozenset(
    {"do_epoll_wait", "futex_do_wait", "futex_wait_queue", "io_sq_thread", "poll_schedule_timeout", "0"}
)


def thread_states(pid: int, proc: Path = PROC) -> list[tuple[str, str]]:
    """(state letter, wchan) of each thread of ``pid``; empty if it is gone."""
    found = []
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
            wchan = (task / "wchan").read_text().strip() or "0"
        except OSError:
            continue
        state = stat[stat.rindex(")") + 2 :].split(" ", 1)[0]
        found.append((state, wchan))
    return found


class ThreadSampler:
    """``with ThreadSampler({"api-server": pid, ...}) as threads: <load>``; then per name:
    ``threads.on_cpu[name]`` (the share of samples with a thread running or runnable) and
    ``threads.waits[name]`` (how often sleeping threads waited where, idle waits left out)."""

    def __init__(self, pids: Mapping[str, int], interval: float = 0.1, proc: Path = PROC) -> None:
        self._pids = dict(pids)
        self._interval = interval
        self._proc = proc
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._samples = 0
        self._running: Counter[str] = Counter()
        self.waits: dict[str, Counter[str]] = {name: Counter() for name in self._pids}

    @property
    def on_cpu(self) -> dict[str, float]:
        return {name: self._running[name] / self._samples if self._samples else 0.0 for name in self._pids}

    def sample(self) -> None:
        self._samples += 1
        for name, pid in self._pids.items():
            states = thread_states(pid, self._proc)
            if any(state == "R" for state, _ in states):
                self._running[name] += 1
            self.waits[name].update(
                w for state, w in states if state != "R" and w.split(".")[0] not in IDLE_WAITS
            )

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def __enter__(self) -> ThreadSampler:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
