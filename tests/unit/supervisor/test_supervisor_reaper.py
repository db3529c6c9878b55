"""Real processes: the reaper ends the sessions it was told of once openmwaa is gone, and only those."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmwaa.supervisor.proc import all_stats, read_stat
from openmwaa.supervisor.process import ChildProcess
from openmwaa.supervisor.reaper import Reaper

PY = sys.executable
#: A session leader that ignores SIGTERM and starts a grandchild that ignores it too, as a
#: component whose shutdown hangs, or a gunicorn master its parent left behind, would.
STUBBORN = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "subprocess.Popen([sys.executable, '-c', "
    "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)'])\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)


def session_of(leader: int) -> set[int]:
    return {s.pid for s in all_stats() if s.session == leader}


def start_session(code: str = STUBBORN) -> ChildProcess:
    popen = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert popen.stdout is not None and popen.stdout.readline() == b"ready\n"
    stat = read_stat(popen.pid)
    assert stat is not None
    child = ChildProcess("c", popen, stat.start_ticks, 0.0, Path("/dev/null"))
    wait_until(lambda: len(session_of(child.pid)) == 2, "the grandchild to start")
    return child


def wait_until(predicate: object, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def sessions() -> Iterator[list[ChildProcess]]:
    started: list[ChildProcess] = []
    yield started
    for child in started:
        for pid in session_of(child.pid):
            os.kill(pid, signal.SIGKILL)
        child.popen.wait(timeout=10)


def test_a_session_left_when_the_pipe_closes_is_ended_even_if_it_ignores_sigterm(
    sessions: list[ChildProcess],
) -> None:
    reaper = Reaper(grace=0.5)
    reaper.start()
    child = start_session()
    sessions.append(child)
    reaper.watch(child)
    reaper.close(timeout=10)
    wait_until(lambda: child.poll() is not None and not session_of(child.pid), "the session to end")
    assert child.popen.returncode == -signal.SIGKILL


def test_forgotten_sessions_and_other_sessions_are_left_alone(sessions: list[ChildProcess]) -> None:
    reaper = Reaper(grace=0.5)
    reaper.start()
    forgotten, stranger = start_session(), start_session()
    sessions += [forgotten, stranger]
    reaper.watch(forgotten)
    reaper.forget(forgotten)
    reaper.close(timeout=10)  # returns once the reaper has exited: it found nothing to end
    time.sleep(0.3)
    assert forgotten.poll() is None and stranger.poll() is None
    assert len(session_of(forgotten.pid)) == 2 and len(session_of(stranger.pid)) == 2


def test_a_kill_9_of_openmwaa_ends_its_sessions(tmp_path: Path, sessions: list[ChildProcess]) -> None:
    """A stand-in for openmwaa starts the reaper and a session, and is SIGKILLed."""
    code = (
        "import subprocess, sys, time\n"
        "from pathlib import Path\n"
        "from openmwaa.supervisor.proc import read_stat\n"
        "from openmwaa.supervisor.process import ChildProcess\n"
        "from openmwaa.supervisor.reaper import Reaper\n"
        "reaper = Reaper(grace=0.5)\n"
        "reaper.start()\n"
        "reaper._send('garbage\\n+ x 1\\n- 1\\n')  # malformed lines are ignored\n"
        f"p = subprocess.Popen([sys.executable, '-c', {STUBBORN!r}], stdout=subprocess.PIPE,"
        " start_new_session=True)\n"
        "p.stdout.readline()\n"
        "reaper.watch(ChildProcess('c', p, read_stat(p.pid).start_ticks, 0.0, Path('/dev/null')))\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    stand_in = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE)
    assert stand_in.stdout is not None
    leader = int(stand_in.stdout.readline())
    wait_until(lambda: len(session_of(leader)) == 2, "the grandchild to start")
    stand_in.kill()
    stand_in.wait()
    wait_until(lambda: not session_of(leader), "the orphaned session to end")


def test_without_a_reaper_running_watch_and_close_do_nothing() -> None:
    reaper = Reaper()
    child = ChildProcess("c", subprocess.Popen(["true"]), 1, 0.0, Path("/dev/null"))
    child.popen.wait()
    reaper.watch(child)
    reaper.forget(child)
    reaper.close()
