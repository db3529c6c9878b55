"""Where a fan-out run's makespan goes: CPU per part, and the timeline of its task instances.

Used by ``bench_workers.py`` (``speedup``); measures only, asserts nothing.

- :class:`CpuSampler` reads ``/proc`` every ``interval`` seconds for the processes below one
  root (the openmwaa server) and sorts each into a part by what its command line and its place in
  the tree say (:func:`part_of`). A part's CPU is the growth of its processes' own
  ``utime + stime``, except the task processes: the Task SDK's supervisor (in a Celery pool
  child) forks one per task and waits for it, so their CPU, exactly, is the growth of the pool
  children's ``cutime + cstime`` (every other short-lived process is seen only while it lives at
  a sample: a lower bound). The machine's own busy time (``/proc/stat``, every process of every
  user) is kept alongside: the machine is shared.
- :func:`timeline` turns Airflow's task instances (``queued_when``, ``start_date``,
  ``end_date``) into the intervals that add up to the makespan.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cpu_breakdown import TICKS as TICK
from cpu_breakdown import cpu_ticks, machine_busy

from openmwaa.supervisor.proc import PROC, parse_stat

SERVER = "openmwaa server"
POSTGRES = "PostgreSQL"
REDIS = "Redis"
WORKER_MAIN = "Celery worker (main process)"
POOL_CHILD = "Celery pool child (Task SDK supervisor)"
TASK = "task process (forked per task)"
#: The order parts are printed in.
PARTS = (
    TASK,
    POOL_CHILD,
    WORKER_MAIN,
    "api-server (execution API)",
    "scheduler",
    "dag-processor",
    "triggerer",
    POSTGRES,
    REDIS,
    SERVER,
    "other",
)
_AIRFLOW_PARTS = {
    "api-server": "api-server (execution API)",
    "scheduler": "scheduler",
    "dag-processor": "dag-processor",
    "triggerer": "triggerer",
}


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    #: Own CPU and that of its waited-for children, in clock ticks.
    own: int
    children: int
    start_ticks: int


def read_proc(pid: int) -> Proc | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    stat = parse_stat(pid, text)
    own, children = cpu_ticks(text)
    comm = text[text.index("(") + 1 : text.rindex(")")]
    return Proc(pid, stat.ppid, comm, own, children, stat.start_ticks)


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def machine_busy_seconds() -> float:
    """Every CPU's non-idle time since boot, steal included (a shared machine's other guests)."""
    busy, steal = machine_busy()
    return busy + steal


def _airflow_kind(line: str) -> str | None:
    """``python -m airflow celery worker ...`` -> ``celery``; None for anything but an Airflow command.

    Celery retitles its processes (``[celeryd: worker@...:MainProcess] -active- (celery worker
    ...)``, ``[celeryd: worker@...:ForkPoolWorker-1]``), the api-server its own
    (``airflow api_server -- ...``).
    """
    if line.startswith("[celeryd:"):
        return "celery"
    words = line.split()
    for i, word in enumerate(words):
        if (word.endswith("/airflow") or word == "airflow") and i + 1 < len(words):
            return words[i + 1].replace("_", "-")  # a retitled "airflow api_server -- ..." too
    return None


def part_of(pid: int, tree: Mapping[int, Proc], lines: Mapping[int, str], server: int) -> str:
    """The part a process belongs to: the topmost Airflow command above it, or what it is."""
    if pid == server:
        return SERVER
    proc = tree[pid]
    if proc.comm.startswith("postgres"):
        return POSTGRES
    if proc.comm.startswith("redis"):
        return REDIS
    # The topmost Airflow command above (a forked child keeps its parent's command line).
    chain = []
    current = pid
    while current in tree and current != server:
        chain.append(current)
        current = tree[current].ppid
    for depth in range(len(chain) - 1, -1, -1):
        kind = _airflow_kind(lines.get(chain[depth], ""))
        if kind == "celery":
            return (WORKER_MAIN, POOL_CHILD, TASK)[min(depth, 2)]
        if kind in _AIRFLOW_PARTS:
            return _AIRFLOW_PARTS[kind]
    return "other"


@dataclass
class Tracked:
    part: str
    first: Proc
    last: Proc


@dataclass
class CpuSampler:
    """Samples the processes below ``root`` in a thread, from :meth:`start` to :meth:`stop`."""

    root: int
    interval: float = 0.2
    tracked: dict[tuple[int, int], Tracked] = field(default_factory=dict)
    #: Celery worker main processes: (pid, start ticks) -> monotonic time first seen.
    workers_seen: dict[tuple[int, int], float] = field(default_factory=dict)
    #: Task process pid -> the Celery worker main process above it.
    task_worker: dict[int, int] = field(default_factory=dict)
    started: float = 0.0
    stopped: float = 0.0
    #: The whole machine's busy CPU seconds between start and stop.
    machine_seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lines: dict[tuple[int, int], str] = field(default_factory=dict)

    def start(self) -> None:
        self._sample()
        self.started = time.monotonic()
        self.machine_seconds = -machine_busy_seconds()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.stopped = time.monotonic()
        self.machine_seconds += machine_busy_seconds()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        procs = [p for p in (read_proc(int(e.name)) for e in PROC.iterdir() if e.name.isdigit()) if p]
        children: dict[int, list[Proc]] = {}
        for proc in procs:
            children.setdefault(proc.ppid, []).append(proc)
        tree: dict[int, Proc] = {}
        todo = [p for p in procs if p.pid == self.root]
        while todo:
            proc = todo.pop()
            tree[proc.pid] = proc
            todo.extend(children.get(proc.pid, ()))
        lines = {}
        for pid, proc in tree.items():
            key = (pid, proc.start_ticks)
            if key not in self._lines:
                self._lines[key] = cmdline(pid)
            lines[pid] = self._lines[key]
        for pid, proc in tree.items():
            key = (pid, proc.start_ticks)
            if key in self.tracked:
                self.tracked[key].last = proc
                continue
            part = part_of(pid, tree, lines, self.root)
            # A process that appears after the start began at zero CPU.
            first = proc if not self.started else Proc(pid, proc.ppid, proc.comm, 0, 0, proc.start_ticks)
            self.tracked[key] = Tracked(part, first, proc)
            if part == WORKER_MAIN:
                self.workers_seen[key] = now
            if part == TASK and proc.ppid in tree:
                self.task_worker[pid] = tree[proc.ppid].ppid

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds per part between :meth:`start` and :meth:`stop`."""
        ticks = dict.fromkeys(PARTS, 0)
        for tracked in self.tracked.values():
            if tracked.part == TASK:
                continue  # counted in its pool child's children time, exactly
            ticks[tracked.part] += tracked.last.own - tracked.first.own
            if tracked.part == POOL_CHILD:
                ticks[TASK] += tracked.last.children - tracked.first.children
        return {part: t / TICK for part, t in ticks.items()}


# The timeline ------------------------------------------------------------------------------------


def parse_time(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


@dataclass(frozen=True)
class TaskTimes:
    """One task instance, in seconds after the trigger."""

    queued: float
    start: float
    end: float
    pid: int | None = None


def task_times(instances: Iterable[Mapping[str, object]], trigger_wall: float) -> list[TaskTimes]:
    out = []
    for ti in instances:
        queued = parse_time(str(ti.get("queued_when") or "") or None)
        start = parse_time(str(ti.get("start_date") or "") or None)
        end = parse_time(str(ti.get("end_date") or "") or None)
        if queued is None or start is None or end is None:
            continue
        pid = ti.get("pid")
        out.append(
            TaskTimes(
                queued - trigger_wall,
                start - trigger_wall,
                end - trigger_wall,
                pid if isinstance(pid, int) else None,
            )
        )
    return sorted(out, key=lambda t: t.start)


@dataclass(frozen=True)
class Timeline:
    trigger_to_first_queued: float
    trigger_to_first_start: float
    last_end_to_done: float
    #: Medians over the tasks, seconds.
    queued_to_start: float
    run_over_sleep: float
    #: Median, over tasks queued after a slot freed, of end-of-the-task-before -> queued.
    end_to_next_queued: float
    #: Median, over the ends while other tasks still waited queued, of a task's end -> the next
    #: start (a slot's turnaround while the queue is full).
    end_to_next_start: float
    max_running: int
    #: Task-seconds (start -> end) over the seconds from the first start to the last end: how
    #: many slots were busy on average.
    mean_running: float
    #: Seconds after the trigger when 2, 3... tasks ran at once for the first time.
    first_at: dict[int, float]


def timeline(tasks: Sequence[TaskTimes], makespan: float, sleep: float) -> Timeline:
    if not tasks:
        raise ValueError("no finished task instances")
    events = sorted([(t.start, 1) for t in tasks] + [(t.end, -1) for t in tasks])
    running = peak = 0
    first_at: dict[int, float] = {}
    for at, step in events:
        running += step
        if running > peak:
            peak = running
            first_at.setdefault(running, at)
    ends = sorted(t.end for t in tasks)
    waits = []
    for task in tasks:
        before = [e for e in ends if e <= task.queued]
        if before:
            waits.append(task.queued - before[-1])
    starts = sorted(t.start for t in tasks)
    turnarounds = []
    for end in ends:
        waiting = any(t.queued <= end < t.start for t in tasks)
        later = [s for s in starts if s >= end]
        if waiting and later:
            turnarounds.append(later[0] - end)
    return Timeline(
        trigger_to_first_queued=min(t.queued for t in tasks),
        trigger_to_first_start=min(t.start for t in tasks),
        last_end_to_done=makespan - max(t.end for t in tasks),
        queued_to_start=statistics.median(t.start - t.queued for t in tasks),
        run_over_sleep=statistics.median(t.end - t.start - sleep for t in tasks),
        end_to_next_queued=statistics.median(waits) if waits else float("nan"),
        end_to_next_start=statistics.median(turnarounds) if turnarounds else float("nan"),
        max_running=peak,
        mean_running=sum(t.end - t.start for t in tasks) / max(1e-9, max(ends) - min(starts)),
        first_at=first_at,
    )


_WORKLOAD_DURATION = re.compile(r"Workload finished .*?duration=([0-9.]+)")


def workload_durations(lines: Iterable[str]) -> list[float]:
    """Seconds each Celery task held its pool process, from the workers' ``Workload finished
    ... duration=`` lines (the Task SDK supervisor's, from its fork to its end)."""
    return [float(m.group(1)) for line in lines if (m := _WORKLOAD_DURATION.search(line))]
