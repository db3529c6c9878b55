"""Pid files, so a restarted openmwaa can find and end the processes an earlier one left behind.

Each component writes ``<home>/run/<component>.pid`` holding its pid and its start time in
clock ticks. A pid alone can be reused by an unrelated process; pid plus start time cannot,
so only a process matching both (or, if the leader died, a member of its session that
started after it) is treated as ours.

The ``run`` folder lies in the environment's home, which may belong to the environment's own
user (``runtime/isolation``): it is reached without following links (``runtime/beneath``), and a
pid file openmwaa did not write itself (another owner) is ignored, so the environment's code can
neither redirect openmwaa's writes nor name processes for it to kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openmwaa.runtime.beneath import folder_beneath
from openmwaa.supervisor.proc import PROC, ProcStat, all_stats, read_stat, session_members


@dataclass(frozen=True)
class PidRecord:
    component: str
    pid: int
    start_ticks: int


def write_pidfile(run_dir: Path, record: PidRecord) -> None:
    name = f"{record.component}.pid"
    data = json.dumps({"pid": record.pid, "start_ticks": record.start_ticks}).encode()
    with folder_beneath(run_dir.parent, run_dir) as folder:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{name}.tmp", dir_fd=folder)
        fd = os.open(
            f"{name}.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=folder
        )
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(f"{name}.tmp", name, src_dir_fd=folder, dst_dir_fd=folder)


def remove_pidfile(run_dir: Path, component: str) -> None:
    with contextlib.suppress(OSError), folder_beneath(run_dir.parent, run_dir, create=False) as folder:
        os.unlink(f"{component}.pid", dir_fd=folder)


def read_pidfiles(run_dir: Path) -> list[PidRecord]:
    """The records openmwaa wrote in ``run_dir`` (files of another owner, or links, are not read)."""
    records: list[PidRecord] = []
    try:
        with folder_beneath(run_dir.parent, run_dir, create=False) as folder:
            if os.fstat(folder).st_uid != os.geteuid():
                return records
            for name in sorted(n for n in os.listdir(folder) if n.endswith(".pid")):
                record = _read_record(folder, name)
                if record is None:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=folder)  # cannot prove anything is ours
                else:
                    records.append(record)
    except (OSError, ValueError):
        return records
    return records


def _read_record(folder: int, name: str) -> PidRecord | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if st.st_uid != os.geteuid() or not stat.S_ISREG(st.st_mode):
            return None
        try:
            data = json.loads(handle.read(4096))
            return PidRecord(name.removesuffix(".pid"), int(data["pid"]), int(data["start_ticks"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


_WEB_SERVER = re.compile(r"(api-server|webserver)(-\d+)?")
_WORKER = re.compile(r"worker(-\d+)?")


def running_web_servers(home: Path) -> int:
    """How many web server replicas (api-server / webserver) of the environment in ``home`` run now."""
    return _running(home, _WEB_SERVER)


def running_workers(home: Path) -> int:
    """How many Celery workers of the environment in ``home`` run now (draining ones included)."""
    return _running(home, _WORKER)


def _running(home: Path, component: re.Pattern[str]) -> int:
    count = 0
    for record in read_pidfiles(home / "run"):
        if not component.fullmatch(record.component):
            continue
        found = read_stat(record.pid)
        if found is not None and found.start_ticks == record.start_ticks:
            count += 1
    return count


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
