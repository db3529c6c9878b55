"""The task counter against a real SQLite metadata database (this Python stands in for a runtime's)."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmwaa.runtime.airflow_config import sqlite_url
from openmwaa.supervisor.task_counts import TaskCounter
from openmwaa.supervisor.worker_scaling import TaskCounts

PYTHON = Path(sys.executable)


def database(path: Path, states: list[str | None]) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS task_instance (task_id TEXT, state TEXT)")
        conn.execute("DELETE FROM task_instance")
        conn.executemany(
            "INSERT INTO task_instance VALUES (?, ?)", [(f"t{i}", s) for i, s in enumerate(states)]
        )
    return f"sqlite:///{path}"


@pytest.fixture
def counter() -> Iterator[TaskCounter]:
    c = TaskCounter(timeout=10)
    yield c
    c.close()


def test_counts_queued_and_running_only(tmp_path: Path, counter: TaskCounter) -> None:
    url = database(tmp_path / "airflow.db", ["queued", "running", "running", "success", "scheduled", None])
    assert counter.count(PYTHON, url) == TaskCounts(queued=1, running=2)
    database(tmp_path / "airflow.db", ["up_for_retry", "deferred", "failed"])
    assert counter.count(PYTHON, url) == TaskCounts(queued=0, running=0)
    assert counter.error is None


def test_reads_the_url_openmwaa_gives_airflow(tmp_path: Path, counter: TaskCounter) -> None:
    """The environments' SQLite URL carries a busy timeout (``?timeout=``); the path is what counts."""
    database(tmp_path / "airflow.db", ["queued", "running"])
    url = sqlite_url(tmp_path)
    assert "?" in url
    assert counter.count(PYTHON, url) == TaskCounts(queued=1, running=1)


def test_an_unreadable_database_is_unknown_with_the_reason(tmp_path: Path, counter: TaskCounter) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    assert counter.count(PYTHON, url) is None
    assert counter.error is not None and "OperationalError" in counter.error
    url = database(tmp_path / "airflow.db", ["running"])
    assert counter.count(PYTHON, url) == TaskCounts(queued=0, running=1)
    assert counter.error is None


def test_a_helper_that_died_is_started_again(tmp_path: Path, counter: TaskCounter) -> None:
    url = database(tmp_path / "airflow.db", ["queued"])
    assert counter.count(PYTHON, url) == TaskCounts(1, 0)
    assert counter._proc is not None
    os.kill(counter._proc.pid, signal.SIGKILL)
    counter._proc.wait()
    assert counter.count(PYTHON, url) == TaskCounts(1, 0)


def test_the_url_is_not_on_the_command_line(tmp_path: Path, counter: TaskCounter) -> None:
    url = database(tmp_path / "airflow.db", [])
    counter.count(PYTHON, url)
    assert counter._proc is not None
    cmdline = Path(f"/proc/{counter._proc.pid}/cmdline").read_bytes()
    assert str(tmp_path).encode() not in cmdline
