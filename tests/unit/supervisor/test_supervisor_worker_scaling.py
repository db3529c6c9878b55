"""The Celery worker autoscaling policy (MWAA's), on a fake clock: one decision a second."""

from __future__ import annotations

from openmwaa.supervisor.worker_scaling import TaskCounts, WorkerScalingPolicy, WorkerScalingRules

RULES = WorkerScalingRules(up_window=10, down_window=120)


class Run:
    def __init__(self, *, low: int = 1, high: int = 4, per_worker: int = 5, current: int = 1) -> None:
        self.policy = WorkerScalingPolicy(RULES)
        self.policy.reset(0)
        self.now = 0.0
        self.low, self.high, self.per_worker, self.current = low, high, per_worker, current

    def feed(self, queued: int, running: int, seconds: int) -> list[int]:
        counts = []
        for _ in range(seconds):
            self.now += 1
            self.current = self.policy.decide(
                self.now,
                TaskCounts(queued, running),
                per_worker=self.per_worker,
                current=self.current,
                low=self.low,
                high=self.high,
            )
            counts.append(self.current)
        return counts

    def unknown(self, seconds: int) -> list[int]:
        counts = []
        for _ in range(seconds):
            self.now += 1
            self.current = self.policy.decide(
                self.now, None, per_worker=self.per_worker, current=self.current, low=self.low, high=self.high
            )
            counts.append(self.current)
        return counts


def test_idle_stays_at_min_workers() -> None:
    run = Run(low=2, current=2)
    assert set(run.feed(0, 0, 600)) == {2}


def test_queued_tasks_add_the_workers_they_need_at_the_first_count() -> None:
    run = Run()
    run.feed(0, 0, 20)
    # 40 tasks at 5 a worker want 8: MaxWorkers is 4, all at once rather than one at a time.
    assert run.feed(35, 5, 1) == [4]
    run = Run(high=10)
    run.feed(0, 0, 20)
    assert run.feed(7, 5, 1) == [3]  # 12 tasks at 5 a worker: 3 workers


def test_tasks_queued_right_after_the_environment_started_get_their_workers_at_once() -> None:
    """A DAG triggered as the environment turns AVAILABLE does not wait out the up window."""
    run = Run()
    assert run.feed(16, 0, 1) == [4]


def test_a_short_burst_adds_what_it_needs_the_next_addition_waits_the_up_window() -> None:
    run = Run(high=10)
    run.feed(0, 0, 20)
    # 20 tasks queued for 3 s: a backlog waiting for slots, not a spike to average away.
    assert run.feed(15, 5, 3) == [4, 4, 4]
    # More arrive at once: the workers just added get the up window (10 s) to start first.
    counts = run.feed(30, 10, 10)
    assert counts[:6] == [4] * 6
    assert counts[-1] == 8


def test_tasks_that_fit_the_running_workers_add_none() -> None:
    """Exactly full (5 running on one worker of 5) is not queueing: no worker is added."""
    run = Run()
    assert set(run.feed(0, 5, 300)) == {1}
    run = Run(current=2)
    assert set(run.feed(2, 8, 300)) == {2}


def test_extra_workers_go_only_after_nothing_ran_for_the_down_window() -> None:
    run = Run()
    run.feed(30, 10, 15)
    assert run.current == 4
    # One task still running: MWAA keeps every worker until nothing is queued or running.
    assert set(run.feed(0, 1, 400)) == {4}
    counts = run.feed(0, 0, 130)
    assert counts[:115] == [4] * 115
    assert counts[-1] == 1, "straight down to MinWorkers, not one at a time"


def test_a_task_queued_at_the_end_of_the_idle_window_keeps_the_workers() -> None:
    run = Run()
    run.feed(30, 10, 15)
    run.feed(0, 0, 119)
    assert run.current == 4
    run.feed(1, 0, 1)
    assert run.current == 4


def test_no_flapping_under_a_steady_load() -> None:
    run = Run(high=10)
    counts = run.feed(3, 10, 900)  # 13 tasks want 3 workers, for good
    assert counts[-1] == 3
    assert counts[counts.index(3) :] == [3] * (900 - counts.index(3))


def test_an_unknown_load_changes_nothing_and_restarts_the_windows() -> None:
    run = Run()
    run.feed(30, 10, 15)
    run.feed(0, 0, 100)
    assert set(run.unknown(60)) == {4}
    counts = run.feed(0, 0, 130)
    assert counts[:115] == [4] * 115, "the idle window starts again after the gap"
    assert counts[-1] == 1


def test_the_bounds_are_applied_at_once() -> None:
    run = Run(low=3, current=1)
    assert run.feed(0, 0, 1) == [3]
    run = Run(high=2, current=4)
    assert run.feed(40, 0, 1) == [2]
    run = Run(per_worker=0)  # a zero concurrency cannot divide by zero
    assert run.feed(3, 0, 15)[-1] == 3
