"""CPU and memory of an environment's processes, by the kind of container MWAA would run them in.

MWAA runs Airflow in containers: web servers, schedulers (with the DAG processor and the
triggerer) and workers. Here every component is a process tree of its own (found through its
pid file and session, :mod:`openmwaa.supervisor.pidfiles`), and tasks run inside the
scheduler's tree (LocalExecutor, SequentialExecutor); a task process is told apart by its
command line and counted as ``BaseWorker``, MWAA's always-on worker.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from openmwaa.supervisor.pidfiles import read_pidfiles
from openmwaa.supervisor.proc import PROC, ProcStat, all_stats, session_members

WEB_SERVER: Final = "WebServer"
SCHEDULER: Final = "Scheduler"
WORKER: Final = "BaseWorker"
_WEB_COMPONENT: Final = re.compile(r"(api-server|webserver)(-\d+)?")
_SCHEDULER_COMPONENT: Final = re.compile(r"scheduler(-\d+)?")
#: Airflow's titles for task processes: Airflow 3's LocalExecutor workers and task supervisors,
#: Airflow 2's ``airflow tasks run`` (and its ``--raw`` child).
_TASK_PROCESS: Final = re.compile(r"airflow (worker|supervisor|task runner|tasks run)")


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    start_ticks: int
    kind: str
    #: CPU time used so far (user + system), clock ticks.
    cpu_ticks: int
    rss_bytes: int


@dataclass(frozen=True)
class UsageSample:
    processes: tuple[ProcessSample, ...]
    #: Component replicas running, by kind (WebServer, Scheduler).
    replicas: dict[str, int]


def sample_environment(home: Path, proc: Path = PROC, stats: list[ProcStat] | None = None) -> UsageSample:
    """What the environment in ``home`` runs now, and each process's CPU time and memory."""
    stats = all_stats(proc) if stats is None else stats
    by_pid = {s.pid: s for s in stats}
    processes: list[ProcessSample] = []
    replicas: dict[str, int] = {}
    for record in read_pidfiles(home / "run"):
        leader = by_pid.get(record.pid)
        if leader is None or leader.start_ticks != record.start_ticks:
            continue
        kind = WEB_SERVER if _WEB_COMPONENT.fullmatch(record.component) else SCHEDULER
        if kind == WEB_SERVER or _SCHEDULER_COMPONENT.fullmatch(record.component):
            replicas[kind] = replicas.get(kind, 0) + 1
        for pid in session_members(leader.session, leader.start_ticks, stats):
            sample = _process(pid, kind, proc)
            if sample is not None:
                processes.append(sample)
    return UsageSample(tuple(processes), replicas)


def _process(pid: int, kind: str, proc: Path) -> ProcessSample | None:
    try:
        stat = (proc / str(pid) / "stat").read_text()
        statm = (proc / str(pid) / "statm").read_text().split()
        cmdline = (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    try:
        rest = stat[stat.rindex(")") + 2 :].split()
        cpu = int(rest[11]) + int(rest[12])
        start = int(rest[19])
        rss = int(statm[1]) * PAGE_SIZE
    except (ValueError, IndexError):
        return None
    if kind == SCHEDULER and _TASK_PROCESS.search(cmdline):
        kind = WORKER
    return ProcessSample(pid, start, kind, cpu, rss)


def cpu_percent(
    before: Iterable[ProcessSample], after: Iterable[ProcessSample], seconds: float, kind: str
) -> float:
    """CPU use of ``kind``'s processes between two samples, in percent of the machine's CPUs."""
    earlier = {(p.pid, p.start_ticks): p.cpu_ticks for p in before}
    ticks = sum(
        p.cpu_ticks - earlier.get((p.pid, p.start_ticks), 0)
        for p in after
        if p.kind == kind and p.cpu_ticks >= earlier.get((p.pid, p.start_ticks), 0)
    )
    if seconds <= 0:
        return 0.0
    return 100.0 * ticks / CLOCK_TICKS / seconds / CPU_COUNT


def memory_percent(sample: Iterable[ProcessSample], kind: str, total_bytes: int) -> float:
    used = sum(p.rss_bytes for p in sample if p.kind == kind)
    return 100.0 * used / total_bytes if total_bytes else 0.0


def total_memory(proc: Path = PROC) -> int:
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


PAGE_SIZE: Final = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
CPU_COUNT: Final = os.cpu_count() or 1
