"""FORCED worker replacement with real processes shaped like a Celery worker running an Airflow task:
the worker's main process (a warm shutdown on SIGTERM: it waits for its task's supervisor), the
supervisor in the worker's process group (it passes SIGTERM on to its task, as Airflow 3's does,
and reports how the task ended), and the task in a process group of its own."""

from __future__ import annotations

import time
from pathlib import Path

from openmwaa.supervisor.proc import ProcStat
from openmwaa.supervisor.process import ChildProcess, stop_all
from openmwaa.supervisor.task_interrupt import interrupt_tasks, task_groups
from tests.unit.supervisor.test_supervisor_process import start, wait_for_file

WORKER = """
import os, signal, sys, time
out, obeys = sys.argv[1], sys.argv[2] == "obeys"
signal.signal(signal.SIGTERM, lambda *a: None)  # Celery's warm shutdown: wait for the task
supervisor = os.fork()
if supervisor == 0:
    task = os.fork()
    if task == 0:
        os.setpgid(0, 0)
        # Airflow 3's task only runs on_kill on SIGTERM; Airflow 2's ends.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if obeys else (lambda *a: None))
        open(os.path.join(out, "task"), "w").write(str(os.getpid()))
        while True:
            time.sleep(60)
    signal.signal(signal.SIGTERM, lambda *a: os.kill(task, signal.SIGTERM))  # passed on
    _, status = os.waitpid(task, 0)
    ended = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
    open(os.path.join(out, "report"), "w").write(ended)  # what the supervisor tells Airflow
    os._exit(0)
os.waitpid(supervisor, 0)
sys.exit(0)
"""


def worker(tmp_path: Path, task: str) -> tuple[ChildProcess, int]:
    code = f"import sys; sys.argv[1:] = [{str(tmp_path)!r}, {task!r}]\n{WORKER}"
    child = start(tmp_path, code, name="worker")
    return child, int(wait_for_file(tmp_path / "task"))


def test_a_task_that_runs_on_after_sigterm_is_killed_and_its_supervisor_reports_it(tmp_path: Path) -> None:
    child, task = worker(tmp_path, "ignores")
    try:
        started = time.monotonic()
        assert interrupt_tasks([child], grace=0.5) == {task}
        # The supervisor lived to see its task end, and the worker then ended by itself.
        assert wait_for_file(tmp_path / "report") == "signal 9"
        assert child.popen.wait(timeout=10) == 0
        assert time.monotonic() - started < 8
    finally:
        stop_all([child], grace=1)


def test_a_task_that_ends_on_sigterm_is_not_killed(tmp_path: Path) -> None:
    child, _ = worker(tmp_path, "obeys")
    try:
        started = time.monotonic()
        assert interrupt_tasks([child], grace=30) == set()
        assert time.monotonic() - started < 10, "returned once the task had ended, not after the grace"
        assert wait_for_file(tmp_path / "report") == "signal 15"
        assert child.popen.wait(timeout=10) == 0
    finally:
        stop_all([child], grace=1)


def test_a_worker_that_has_ended_is_not_signalled(tmp_path: Path) -> None:
    child = start(tmp_path, "pass")
    child.popen.wait(timeout=10)
    looked: list[int] = []

    def stats() -> list[ProcStat]:
        looked.append(1)
        return []

    assert interrupt_tasks([child], grace=1, stats=stats) == set()
    assert looked == [], "a reaped pid may be another process's: not even looked for"


def test_task_groups_are_the_other_process_groups_of_the_session_started_after_it() -> None:
    leader = 4242
    stats = [
        ProcStat(pid=leader, ppid=1, pgrp=leader, session=leader, start_ticks=1000),  # the worker
        ProcStat(pid=4300, ppid=leader, pgrp=leader, session=leader, start_ticks=1100),  # pool process
        ProcStat(pid=4301, ppid=4300, pgrp=4301, session=leader, start_ticks=1200),  # a task
        ProcStat(pid=4302, ppid=4301, pgrp=4301, session=leader, start_ticks=1300),  # its child
        ProcStat(pid=4400, ppid=1, pgrp=4400, session=leader, start_ticks=900),  # older: not its
        ProcStat(pid=4500, ppid=1, pgrp=4500, session=4500, start_ticks=1400),  # another session
    ]
    assert task_groups(leader, 1000, stats) == {4301}
