"""Where the CPU goes during a benchmark phase: CPU seconds per second of each part of openmwaa.

A part is one of the environment's components (each api-server replica, scheduler, DAG processor,
triggerer: a process session of its own, found through its pid file), the openmwaa server (its
process and the descendants no component claims), the load generator (this process), and
*other*: the whole machine's busy time from ``/proc/stat`` less all of those (other people's
processes on a shared machine, the kernel's own work).

A process's CPU time is ``utime + stime`` from ``/proc/<pid>/stat``; for the components also
``cutime + cstime``, the time of children already waited for (the DAG processor forks one child
per file it parses, the executor one per task), so short-lived children are counted though no
sample saw them alive. The openmwaa server's own ``cutime`` is left out: its children are the
components, counted under their own names.

Two samples, at a phase's start and end, are enough: every counter only grows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from openmwaa.supervisor.pidfiles import read_pidfiles
from openmwaa.supervisor.proc import PROC, ProcStat, all_stats, descendants, session_members

SERVER = "openmwaa server"
LOADGEN = "load generator"
OTHER = "other (whole machine less the above)"
IDLE = "idle"
STEAL = "steal (time the hypervisor kept)"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    at: float
    #: Busy CPU seconds of the whole machine (all cores) since boot, steal left out.
    machine: float
    #: CPU seconds so far, by part.
    parts: dict[str, float]
    #: The autogroup nice of each component's leader (``/proc/<pid>/autogroup``), when readable.
    nice: dict[str, int] = field(default_factory=dict)
    #: Processes alive in each component's session.
    processes: dict[str, int] = field(default_factory=dict)
    #: CPU seconds the hypervisor gave to others while this machine's cores wanted to run.
    steal: float = 0.0


def machine_busy(proc: Path = PROC) -> tuple[float, float]:
    """(busy, steal) CPU seconds of every core since boot, from ``/proc/stat``'s first line: busy is
    all of it but idle, iowait and steal."""
    values = [int(x) for x in (proc / "stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq) / TICKS, steal / TICKS


def cpu_ticks(stat_text: str) -> tuple[int, int]:
    """(utime + stime, cutime + cstime) from a ``/proc/<pid>/stat`` line, in clock ticks: the
    process's own CPU, and that of its children already waited for."""
    rest = stat_text[stat_text.rindex(")") + 2 :].split()  # the name may hold spaces or ')'
    return int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14])


def process_ticks(pid: int, proc: Path = PROC, *, children: bool = True) -> int:
    """utime + stime (+ cutime + cstime with ``children``) of ``pid``; 0 if it is gone."""
    try:
        own, waited = cpu_ticks((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return 0
    return own + waited if children else own


def autogroup_nice(pid: int, proc: Path = PROC) -> int | None:
    """The nice of ``pid``'s autogroup ("/autogroup-42 nice 10"), or None if unreadable."""
    try:
        return int((proc / str(pid) / "autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def sample(
    run_dirs: Iterable[Path], server_pid: int, loadgen_pid: int | None = None, proc: Path = PROC
) -> CpuSample:
    """CPU seconds so far of every part: the components whose pid files are in ``run_dirs``,
    the openmwaa server ``server_pid``, the load generator (this process unless given)."""
    stats = all_stats(proc)
    by_pid = {s.pid: s for s in stats}
    parts: dict[str, float] = {}
    nice: dict[str, int] = {}
    processes: dict[str, int] = {}
    claimed: set[int] = set()
    for run_dir in run_dirs:
        for record in read_pidfiles(run_dir):
            leader = by_pid.get(record.pid)
            if leader is None or leader.start_ticks != record.start_ticks:
                continue
            members = session_members(leader.session, leader.start_ticks, stats)
            claimed.update(members)
            processes[record.component] = len(members)
            parts[record.component] = sum(process_ticks(pid, proc) for pid in members) / TICKS
            group_nice = autogroup_nice(record.pid, proc)
            if group_nice is not None:
                nice[record.component] = group_nice
    parts[SERVER] = _server_seconds(server_pid, stats, claimed, proc)
    parts[LOADGEN] = process_ticks(os.getpid() if loadgen_pid is None else loadgen_pid, proc) / TICKS
    busy, steal = machine_busy(proc)
    return CpuSample(time.monotonic(), busy, parts, nice, processes, steal)


def _server_seconds(server_pid: int, stats: list[ProcStat], claimed: set[int], proc: Path) -> float:
    ticks = process_ticks(server_pid, proc, children=False)
    for pid in descendants([server_pid], stats) - claimed - {server_pid}:
        ticks += process_ticks(pid, proc)
    return ticks / TICKS


def rates(before: CpuSample, after: CpuSample, cores: int | None = None) -> dict[str, float]:
    """CPU seconds per second of each part between two samples, with ``OTHER``, ``STEAL`` and ``IDLE``.

    A part missing from either sample (a component that started or stopped in between) counts
    from zero; a counter that went down (a restarted process) counts as zero.
    """
    seconds = after.at - before.at
    if seconds <= 0:
        raise ValueError("the samples are not in order")
    result = {
        name: max(0.0, used - before.parts.get(name, 0.0)) / seconds for name, used in after.parts.items()
    }
    busy = max(0.0, after.machine - before.machine) / seconds
    steal = max(0.0, after.steal - before.steal) / seconds
    result[OTHER] = max(0.0, busy - sum(result.values()))
    result[STEAL] = steal
    result[IDLE] = max(0.0, (cores or os.cpu_count() or 1) - busy - steal)
    return result


class CpuMeter:
    """``with CpuMeter(run_dirs, server_pid) as meter: <load>``; then ``meter.rates``, ``meter.nice``
    (the autogroup nice of each component, at either sample) and ``meter.processes`` (at the end)."""

    def __init__(self, run_dirs: Iterable[Path], server_pid: int) -> None:
        self._run_dirs = list(run_dirs)
        self._server_pid = server_pid
        self._before: CpuSample | None = None
        self.rates: dict[str, float] = {}
        self.nice: dict[str, int] = {}
        self.processes: dict[str, int] = {}

    def __enter__(self) -> CpuMeter:
        self._before = sample(self._run_dirs, self._server_pid)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._before is not None
        after = sample(self._run_dirs, self._server_pid)
        self.rates = rates(self._before, after)
        self.nice = {
            name: max(self._before.nice.get(name, 0), after.nice.get(name, 0))
            for name in {*self._before.nice, *after.nice}
        }
        self.processes = after.processes


def table(columns: Mapping[str, Mapping[str, float]], order: Iterable[str] = ()) -> list[str]:
    """A markdown table: one row per part (``order`` first, then the rest as found), one
    column per phase, CPU seconds per second; a total of the busy rows at the end."""
    names: list[str] = list(order)
    for column in columns.values():
        names += [n for n in column if n not in names]
    present = [n for n in names if any(n in c for c in columns.values())]
    width = max(len(n) for n in [*present, "part"])
    head = "| " + f"{'CPU s/s':<{width}}" + " | " + " | ".join(f"{c:>14}" for c in columns) + " |"
    rule = "|" + "-" * (width + 2) + "|" + "|".join("-" * 16 for _ in columns) + "|"
    lines = [head, rule]
    for name in present:
        cells = (f"{c[name]:14.2f}" if name in c else f"{'-':>14}" for c in columns.values())
        lines.append(f"| {name:<{width}} | " + " | ".join(cells) + " |")
    totals = (sum(v for k, v in c.items() if k not in (IDLE, STEAL)) for c in columns.values())
    lines.append(f"| {'busy, all parts':<{width}} | " + " | ".join(f"{t:14.2f}" for t in totals) + " |")
    return lines
