"""Pid files, so a restarted openmwaa can find and end the processes an earlier one left behind.

Each component writes ``<home>/run/<component>.pid`` holding its pid and its start time in
clock ticks. A pid alone can be reused by an unrelated process; pid plus start time cannot,
so only a process matching both (or, if the leader died, a member of its session that
started after it) is treated as ours.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openmwaa.supervisor.proc import PROC, ProcStat, all_stats, read_stat, session_members


@dataclass(frozen=True)
class PidRecord:
    component: str
    pid: int
    start_ticks: int


def write_pidfile(run_dir: Path, record: PidRecord) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"{record.component}.pid"
    tmp = path.with_suffix(".pid.tmp")
    tmp.write_text(json.dumps({"pid": record.pid, "start_ticks": record.start_ticks}))
    os.replace(tmp, path)


def remove_pidfile(run_dir: Path, component: str) -> None:
    (run_dir / f"{component}.pid").unlink(missing_ok=True)


def read_pidfiles(run_dir: Path) -> list[PidRecord]:
    records: list[PidRecord] = []
    if not run_dir.is_dir():
        return records
    for path in sorted(run_dir.glob("*.pid")):
        try:
            data = json.loads(path.read_text())
            records.append(PidRecord(path.stem, int(data["pid"]), int(data["start_ticks"])))
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: cannot prove anything is ours
    return records


def leftover_processes(record: PidRecord, stats: list[ProcStat]) -> list[int]:
    """Processes of ``record``'s session that are provably ours (pure, for testing)."""
    by_pid = {s.pid: s for s in stats}
    leader = by_pid.get(record.pid)
    if leader is not None and leader.start_ticks != record.start_ticks:
        return []  # the pid now belongs to someone else, and so may the session id
    return [pid for pid in session_members(record.pid, record.start_ticks, stats) if pid != os.getpid()]


def kill_orphans(
    run_dir: Path,
    *,
    grace: float = 10.0,
    proc: Path = PROC,
    kill: Callable[[int, int], None] = os.kill,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """End every process a previous run recorded in ``run_dir``; the pids that were signalled."""
    records = read_pidfiles(run_dir)
    if not records:
        return []
    stats = all_stats(proc)
    targets: dict[int, int] = {}
    for record in records:
        for pid in leftover_processes(record, stats):
            stat = next(s for s in stats if s.pid == pid)
            targets[pid] = stat.start_ticks
    _signal_all(targets, signal.SIGTERM, kill)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _still_alive(targets, proc):
        sleep(0.1)
    _signal_all({p: t for p, t in targets.items() if _is_same(p, t, proc)}, signal.SIGKILL, kill)
    for record in records:
        remove_pidfile(run_dir, record.component)
    return sorted(targets)


def _is_same(pid: int, start_ticks: int, proc: Path) -> bool:
    stat = read_stat(pid, proc)
    return stat is not None and stat.start_ticks == start_ticks


def _still_alive(targets: dict[int, int], proc: Path) -> bool:
    return any(_is_same(pid, ticks, proc) for pid, ticks in targets.items())


def _signal_all(targets: dict[int, int], sig: int, kill: Callable[[int, int], None]) -> None:
    for pid in targets:
        try:
            kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            continue
