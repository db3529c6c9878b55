"""WorkerReplacementStrategy FORCED: the tasks Celery workers run end now, and Airflow hears of it.

Airflow runs each task in a process group of its own inside the worker's session (Airflow 3's
Task SDK supervisor and Airflow 2's task runner both call ``setpgid``), under a supervising
process that stays in the worker's group: Airflow 3's supervisor in the Celery pool process,
Airflow 2's ``LocalTaskJob``. That supervisor is what tells Airflow how its task ended.

SIGTERM to a worker's process group starts Celery's warm shutdown (the worker takes no more
tasks) and reaches the supervisors. Airflow 2's ends its task, which fails and is retried per its
``retries``. Airflow 3's passes the signal on to its task, whose handler only runs the operator's
``on_kill`` and carries on: a task that does not stop by itself runs on, the worker with it. If
the whole session were then killed, the supervisor would die with its task, nothing would tell
Airflow, and the task instance would stay "running" until the scheduler's heartbeat timeout (300 s
by default) failed it.

So, as Airflow's own supervisor stops a task (``WatchedSubprocess.kill``: SIGTERM, then SIGKILL
after an escalation delay of 5 s), :func:`interrupt_tasks` sends SIGTERM to each worker's process
group, waits up to ``grace`` for the tasks' process groups to end, and sends SIGKILL to those left
and to nothing else. Their supervisors, still alive, see the task end by a signal and record it
(Airflow 3: ``up_for_retry`` while retries are left, else ``failed``) through the API at once;
the workers then have no task left and end their warm shutdown. Whatever still runs is the
caller's to stop (SIGTERM again, which Celery ignores during a warm shutdown, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence

from openmwaa.supervisor.proc import ProcStat, all_stats
from openmwaa.supervisor.process import ChildProcess

#: Between looks at whether the tasks have ended.
POLL_INTERVAL = 0.1


def task_groups(leader: int, start_ticks: int, stats: Sequence[ProcStat]) -> set[int]:
    """The process groups other than the leader's in its session (a worker's tasks, and what they
    started), of processes started no earlier than it (a reused pid is never one)."""
    return {
        s.pgrp for s in stats if s.session == leader and s.pgrp != leader and s.start_ticks >= start_ticks
    }


def interrupt_tasks(
    children: Sequence[ChildProcess],
    grace: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    stats: Callable[[], list[ProcStat]] = all_stats,
) -> set[int]:
    """SIGTERM to each live child's process group; after up to ``grace``, SIGKILL to the task
    process groups still in their sessions. The process groups killed."""
    live = [c for c in children if c.poll() is None]  # not reaped: the pid is still the child's
    if not live:
        return set()
    for child in live:
        _signal_group(child.pid, signal.SIGTERM)
    deadline = clock() + grace
    while True:
        found = stats()
        left = set().union(*(task_groups(child.pid, child.start_ticks, found) for child in live))
        if not left or clock() >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    for pgid in left:
        _signal_group(pgid, signal.SIGKILL)
    return left


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
