"""Reading /proc: start times, sessions and process trees (Linux only, like PDEATHSIG)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    pgrp: int
    session: int
    #: Clock ticks after boot when the process started: with the pid, a process's identity.
    start_ticks: int


def parse_stat(pid: int, text: str) -> ProcStat:
    # The command name is in parentheses and may itself contain spaces or ')'.
    rest = text[text.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid, ppid=int(rest[1]), pgrp=int(rest[2]), session=int(rest[3]), start_ticks=int(rest[19])
    )


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    """The process's stat line, or None if it is gone (or a zombie nobody will wait for)."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    try:
        stat = parse_stat(pid, text)
    except (ValueError, IndexError):
        return None
    if text[text.rindex(")") + 2 :].startswith("Z"):
        return None
    return stat


def all_stats(proc: Path = PROC) -> list[ProcStat]:
    stats = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name), proc)
            if stat is not None:
                stats.append(stat)
    return stats


def session_members(session: int, start_ticks: int, stats: list[ProcStat]) -> list[int]:
    """Processes of ``session`` started no earlier than its leader did.

    A component may move children into process groups of their own (Airflow 2's DAG
    processor manager does), but they stay in the component's session, so the session is
    what "everything this component started" means.
    """
    return [s.pid for s in stats if s.session == session and s.start_ticks >= start_ticks]


def descendants(roots: list[int], stats: list[ProcStat]) -> set[int]:
    """``roots`` and every process below them."""
    children: dict[int, list[int]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat.pid)
    alive = {s.pid for s in stats}
    found: set[int] = set()
    todo = [pid for pid in roots if pid in alive]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found
