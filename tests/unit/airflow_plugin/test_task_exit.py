"""openmwaa_airflow.task_exit: a task supervisor with no socket left waits on its process, not on
``select``'s whole timeout. The supervisor here is a stand-in with the attributes the wrapper reads
(a real selector, a real child process); the real Task SDK's is checked against it
in tests/e2e/test_task_exit.py."""

from __future__ import annotations

import contextlib
import importlib.util
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from openmwaa.runtime.airflow_config import airflow_plugin_dir


def load() -> ModuleType:
    path = airflow_plugin_dir() / "openmwaa_airflow" / "task_exit.py"
    spec = importlib.util.spec_from_file_location("openmwaa_airflow_task_exit", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


task_exit = load()


@dataclass
class Supervisor:
    """What the wrapper reads of Airflow's ``WatchedSubprocess``; ``original`` records its calls."""

    _process: subprocess.Popen[bytes]
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    _exit_code: int | None = None
    waits: list[float] = field(default_factory=list)

    def original(self, max_wait_time: float, *args: Any, **kwargs: Any) -> int | None:
        self.waits.append(max_wait_time)
        self.selector.select(timeout=max(0.01, max_wait_time))  # what Airflow's does
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._exit_code = self._process.wait(timeout=0)
        return self._exit_code


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A process that ends 0.3 s from now."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def service(supervisor: Supervisor, max_wait_time: float) -> int | None:
    wrapped = task_exit.wake_on_exit(Supervisor.original)
    result: int | None = wrapped(supervisor, max_wait_time)
    return result


def test_with_no_socket_left_the_end_of_the_process_is_seen_at_once(child: subprocess.Popen[bytes]) -> None:
    supervisor = Supervisor(child)
    started = time.monotonic()
    assert service(supervisor, 30.0) == 0
    # Without the wrapper Airflow's step would sleep its whole 30 s timeout in ``select``.
    assert time.monotonic() - started < 20
    assert supervisor.waits == [0.0]


def test_a_process_still_running_after_the_timeout_is_left_to_airflow(child: subprocess.Popen[bytes]) -> None:
    supervisor = Supervisor(child)
    assert service(supervisor, 0.05) is None
    assert supervisor.waits == [0.0]
    assert service(supervisor, 30.0) == 0


def test_while_a_socket_is_open_airflows_own_wait_is_untouched(child: subprocess.Popen[bytes]) -> None:
    supervisor = Supervisor(child)
    ours, theirs = socket.socketpair()
    try:
        supervisor.selector.register(ours, selectors.EVENT_READ)
        assert service(supervisor, 0.05) is None
        assert supervisor.waits == [0.05]
    finally:
        ours.close()
        theirs.close()


def test_a_known_exit_is_not_waited_for_again() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    supervisor = Supervisor(proc, _exit_code=0)
    assert service(supervisor, 0.05) == 0
    assert supervisor.waits == [0.05]


def test_install_leaves_a_runtime_without_the_task_sdk_alone() -> None:
    assert task_exit.install() is False


def test_wrapping_is_marked_so_install_wraps_once() -> None:
    wrapped = task_exit.wake_on_exit(Supervisor.original)
    assert getattr(wrapped, "_openmwaa_wakes_on_exit", False)
    assert not hasattr(Supervisor.original, "_openmwaa_wakes_on_exit")
