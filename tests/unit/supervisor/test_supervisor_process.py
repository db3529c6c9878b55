"""Real child processes: the PDEATHSIG shim, session-wide stopping, log tails."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from openmwaa.supervisor import process
from openmwaa.supervisor.proc import read_stat
from openmwaa.supervisor.process import PDEATHSIG_SHIM, ChildProcess, log_tail, spawn, stop_all

PY = sys.executable


def start(tmp_path: Path, code: str, name: str = "c") -> ChildProcess:
    return spawn(
        name,
        [PY, "-c", code],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        log_path=tmp_path / "logs" / f"{name}.log",
        started_at=0.0,
        shim_python=PY,
    )


def wait_for_file(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_spawned_child_is_a_session_leader_with_a_log(tmp_path: Path) -> None:
    child = start(tmp_path, "import time; print('hello', flush=True); time.sleep(60)")
    try:
        stat = read_stat(child.pid)
        assert stat is not None
        assert stat.session == child.pid and stat.pgrp == child.pid
        assert child.start_ticks == stat.start_ticks
        deadline = time.monotonic() + 10
        while "hello" not in log_tail(child.log_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "hello" in log_tail(child.log_path)
        assert "starting c" in child.log_path.read_text()
    finally:
        stop_all([child], grace=5)
    assert child.poll() is not None


def test_stop_reaches_processes_that_left_the_process_group(tmp_path: Path) -> None:
    # Airflow 2's DAG processor manager moves into its own process group but stays in the session.
    code = (
        "import os, time, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.setpgid(0, 0)\n"
        f"    open({str(tmp_path / 'grandchild')!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "import signal\n"
        "signal.signal(signal.SIGTERM, lambda *a: os._exit(0))\n"
        "time.sleep(60)\n"
    )
    child = start(tmp_path, code)
    grandchild = int(wait_for_file(tmp_path / "grandchild"))
    stat = read_stat(grandchild)
    assert stat is not None and stat.pgrp != child.pid and stat.session == child.pid
    stop_all([child], grace=5)
    assert child.poll() is not None
    deadline = time.monotonic() + 5
    while read_stat(grandchild) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_stat(grandchild) is None


def test_child_dies_when_the_thread_that_started_it_dies(tmp_path: Path) -> None:
    holder: list[ChildProcess] = []

    def supervise() -> None:
        holder.append(start(tmp_path, "import time; time.sleep(60)"))
        time.sleep(1)  # the thread lives on for a while, as a runner thread does, then dies

    thread = threading.Thread(target=supervise)
    thread.start()
    thread.join()
    (child,) = holder
    try:
        assert child.popen.wait(timeout=10) == -15  # SIGTERM from PR_SET_PDEATHSIG
    finally:
        stop_all([child], grace=1)


def test_shim_refuses_to_run_without_its_parent() -> None:
    done = subprocess.run([PY, "-S", "-c", PDEATHSIG_SHIM, "1", "/bin/true"], check=False)
    assert done.returncode == 70


def test_log_tail_keeps_the_end(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    tail = log_tail(log, lines=3)
    assert tail == "line 97\nline 98\nline 99"
    assert log_tail(tmp_path / "missing.log") == ""


def test_stopping_no_child_reads_no_process_table(monkeypatch: pytest.MonkeyPatch) -> None:
    def scan() -> list[object]:
        raise AssertionError("/proc scanned to stop nothing")

    monkeypatch.setattr(process, "all_stats", scan)
    stop_all([], grace=5)
