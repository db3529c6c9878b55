"""ManagedServer with a stand-in server (a real child process, no PostgreSQL or Redis)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from openmwaa.backing.managed import BackingServiceError, ManagedServer
from openmwaa.runtime.isolation import EnvironmentUser
from openmwaa.supervisor.backoff import RestartPolicy


class SleepyServer:
    """A Python process that 'answers' once it has written its pid file."""

    name = "sleepy"
    stop_signal = signal.SIGTERM
    user: EnvironmentUser | None = None

    def __init__(self, tmp_path: Path, code: str = "import time; time.sleep(60)") -> None:
        self.workdir = tmp_path
        self.log_path = tmp_path / "logs" / "sleepy.log"
        self.pid_file = tmp_path / "pid"
        self.code = code
        self.prepared = 0

    def prepare(self) -> None:
        self.prepared += 1
        self.log_path.parent.mkdir(exist_ok=True)

    def argv(self) -> Sequence[str]:
        script = f"import os; open({str(self.pid_file)!r}, 'w').write(str(os.getpid())); {self.code}"
        return [sys.executable, "-c", script]

    def answers(self) -> bool:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def pid(self) -> int:
        return int(self.pid_file.read_text())


def wait_until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_started_answering_restarted_after_a_kill_and_stopped(tmp_path: Path) -> None:
    program = SleepyServer(tmp_path)
    server = ManagedServer(program, policy=RestartPolicy(base_delay=0.2), check_interval=0.1, environ={})
    server.start(timeout=20)
    try:
        assert server.problem() is None and program.prepared == 1
        first = program.pid()
        program.pid_file.unlink()
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: server.problem() is not None)
        assert "exited" in str(server.problem()) or "does not answer" in str(server.problem())
        wait_until(lambda: program.pid_file.exists() and server.problem() is None)
        assert program.pid() != first, "a new process replaced the killed one"
    finally:
        server.stop(grace=5)
    second = program.pid()
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
    assert server.problem() == "sleepy is stopped"


def test_a_server_that_exits_at_once_fails_the_start_with_its_log(tmp_path: Path) -> None:
    program = SleepyServer(tmp_path, code="print('bad configuration'); raise SystemExit(3)")
    program.answers = lambda: False  # type: ignore[method-assign]
    server = ManagedServer(program, policy=RestartPolicy(base_delay=0.05), check_interval=0.1, environ={})
    with pytest.raises(BackingServiceError, match="exits as soon as it starts") as caught:
        server.start(timeout=30)
    assert "bad configuration" in caught.value.message
