"""benchmarks/thread_states.py: thread states and waits from a fake /proc."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.benchmarks.loader import load_benchmark_module


@pytest.fixture(scope="module")
def states() -> ModuleType:
    module = load_benchmark_module("thread_states")
    return module


def thread(proc: Path, pid: int, tid: int, state: str, wchan: str) -> None:
    task = proc / str(pid) / "task" / str(tid)
    task.mkdir(parents=True, exist_ok=True)
    (task / "stat").write_text(f"{tid} (airflow api_ser) {state} 1 {pid} {pid} 0\n")
    (task / "wchan").write_text(wchan)


def test_thread_states_reads_each_threads_state_and_wait(states: ModuleType, tmp_path: Path) -> None:
    thread(tmp_path, 7, 7, "S", "do_epoll_wait")
    thread(tmp_path, 7, 8, "R", "0")
    thread(tmp_path, 7, 9, "S", "")

    assert sorted(states.thread_states(7, tmp_path)) == [("R", "0"), ("S", "0"), ("S", "do_epoll_wait")]
    assert states.thread_states(99, tmp_path) == []


def test_sampler_counts_samples_with_a_runnable_thread_and_non_idle_waits(
    states: ModuleType, tmp_path: Path
) -> None:
    thread(tmp_path, 7, 7, "S", "do_epoll_wait")
    thread(tmp_path, 7, 8, "S", "do_nanosleep")
    thread(tmp_path, 7, 10, "S", "poll_schedule_timeout.constprop.0")
    thread(tmp_path, 9, 9, "R", "0")
    sampler = states.ThreadSampler({"api-server": 7, "api-server-1": 9}, proc=tmp_path)

    sampler.sample()
    thread(tmp_path, 7, 8, "R", "0")
    sampler.sample()

    assert sampler.on_cpu == {"api-server": 0.5, "api-server-1": 1.0}
    assert sampler.waits["api-server"] == {"do_nanosleep": 1}
    assert not sampler.waits["api-server-1"]
