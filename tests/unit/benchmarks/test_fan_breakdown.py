"""benchmarks/fan_breakdown.py: which part a process is, CPU per part, and a run's timeline."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from tests.unit.benchmarks.loader import load_benchmark_module


@pytest.fixture(scope="module")
def fan() -> ModuleType:
    module = load_benchmark_module("fan_breakdown")
    return module


SERVER = 10
#: pid -> (parent, comm, command line) of an environment below the openmwaa server.
TREE = {
    SERVER: (1, "python", "python -m openmwaa up"),
    20: (SERVER, "python", "[celeryd: worker@q:MainProcess] -active- (celery worker --skip-serve-logs)"),
    21: (20, "python", "[celeryd: worker@q:ForkPoolWorker-1]"),
    22: (21, "python", "airflow task runner: bench_fan sleep0"),
    30: (SERVER, "airflow api_ser", "airflow api_server -- host:127.0.0.1 port:8080"),
    40: (SERVER, "python", "/rt/bin/python -m airflow scheduler --skip-serve-logs"),
    50: (SERVER, "python", "/rt/bin/python -m airflow dag-processor"),
    51: (50, "python", "/rt/bin/python -m airflow dag-processor"),
    60: (SERVER, "postgres", "/x/bin/postgres -D data"),
    61: (60, "postgres", "postgres: openmwaa db 127.0.0.1 idle"),
    70: (SERVER, "redis-server", "redis-server 127.0.0.1:6379"),
    80: (SERVER, "python", "python -I -S -c import os"),
}


def test_each_process_is_sorted_into_its_part(fan: ModuleType) -> None:
    tree = {pid: fan.Proc(pid, ppid, comm, 0, 0, 0) for pid, (ppid, comm, _) in TREE.items()}
    lines = {pid: line for pid, (_, _, line) in TREE.items()}
    parts = {pid: fan.part_of(pid, tree, lines, SERVER) for pid in TREE}
    assert parts == {
        SERVER: fan.SERVER,
        20: fan.WORKER_MAIN,
        21: fan.POOL_CHILD,
        22: fan.TASK,
        30: "api-server (execution API)",
        40: "scheduler",
        50: "dag-processor",
        51: "dag-processor",  # a forked child keeps its parent's command line: the topmost counts
        60: fan.POSTGRES,
        61: fan.POSTGRES,
        70: fan.REDIS,
        80: "other",
    }


def test_task_processes_count_once_through_their_pool_child(fan: ModuleType) -> None:
    """A task process seen alive is not counted itself: its pool child's waited-for children
    time has all of it, including what it used after the last sample."""
    sampler = fan.CpuSampler(root=SERVER)

    def track(part: str, first: tuple[int, int], last: tuple[int, int]) -> None:
        proc = fan.Proc(len(sampler.tracked), 0, "python", *first, 0)
        sampler.tracked[(proc.pid, 0)] = fan.Tracked(part, proc, fan.Proc(proc.pid, 0, "python", *last, 0))

    track(fan.POOL_CHILD, (500, 1000), (530, 1400))  # 0.3 s own, 4 s of its reaped tasks
    track(fan.TASK, (0, 0), (250, 0))  # seen at 2.5 s, then reaped: inside the 4 s above
    track("scheduler", (100, 0), (300, 0))
    seconds = sampler.cpu_seconds()
    tick = fan.TICK
    assert seconds[fan.TASK] == pytest.approx(400 / tick)
    assert seconds[fan.POOL_CHILD] == pytest.approx(30 / tick)
    assert seconds["scheduler"] == pytest.approx(200 / tick)
    assert sum(seconds.values()) == pytest.approx(630 / tick)


def test_task_times_are_seconds_after_the_trigger_and_skip_unfinished_ones(fan: ModuleType) -> None:
    trigger = fan.parse_time("2026-12-06T13:00:00Z")
    instances = [
        {
            "queued_when": "2026-12-06T13:00:01.500000Z",
            "start_date": "2026-12-06T13:00:02Z",
            "end_date": "2026-12-06T13:00:05.250000+00:00",
            "pid": 42,
        },
        {"queued_when": "2026-12-06T13:00:01Z", "start_date": None, "end_date": None},
    ]
    (task,) = fan.task_times(instances, trigger)
    assert (task.queued, task.start, task.end, task.pid) == (1.5, 2.0, 5.25, 42)


def test_the_timeline_of_one_slot_working_through_a_queue(fan: ModuleType) -> None:
    # One slot, three tasks of 3 s queued at 0.5 s: each starts 1 s after the one before ends.
    tasks = [fan.TaskTimes(0.5, 1, 4), fan.TaskTimes(0.5, 5, 8), fan.TaskTimes(0.5, 9, 12.5)]
    line = fan.timeline(tasks, makespan=13.0, sleep=3.0)
    assert line.trigger_to_first_queued == 0.5
    assert line.trigger_to_first_start == 1
    assert line.last_end_to_done == 0.5
    assert line.queued_to_start == 4.5
    assert line.run_over_sleep == 0
    assert line.end_to_next_start == 1, "only ends while a task waited count: the last does not"
    assert math.isnan(line.end_to_next_queued), "every task was queued before any ended"
    assert line.max_running == 1
    assert line.mean_running == pytest.approx(9.5 / 11.5)


def test_the_timeline_says_when_more_tasks_ran_at_once(fan: ModuleType) -> None:
    tasks = [fan.TaskTimes(0, 1, 4)] + [fan.TaskTimes(0, 2 + i / 10, 5) for i in range(6)]
    line = fan.timeline(tasks, makespan=6.0, sleep=3.0)
    assert line.max_running == 7
    assert line.first_at[2] == 2
    assert line.first_at[6] == pytest.approx(2.4)
    with pytest.raises(ValueError):
        fan.timeline([], makespan=1.0, sleep=3.0)


def test_workload_durations_come_from_the_supervisors_log_lines(fan: ModuleType) -> None:
    lines = [
        "2026-12-06T13:21:13Z [info ] Workload finished [supervisor] duration=24.75 exit_code=0",
        "2026-12-06T13:21:14Z [info ] Secrets backends loaded for worker [supervisor]",
        "2026-12-06T13:21:19Z [info ] Workload finished [supervisor] duration=4.96 exit_code=0",
    ]
    assert fan.workload_durations(lines) == [24.75, 4.96]
