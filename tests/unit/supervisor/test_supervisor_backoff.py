from __future__ import annotations

from openmwaa.supervisor.backoff import CrashTracker, RestartPolicy


def test_delay_doubles_up_to_the_cap() -> None:
    tracker = CrashTracker(RestartPolicy(base_delay=1, max_delay=10, window=1000, max_restarts=100))
    delays = [tracker.record_crash(float(t)).delay for t in range(6)]
    assert delays == [1, 2, 4, 8, 10, 10]


def test_five_crashes_in_two_minutes_is_a_crash_loop() -> None:
    tracker = CrashTracker(RestartPolicy(window=120, max_restarts=5))
    verdicts = [tracker.record_crash(t) for t in (0, 20, 40, 60, 80)]
    assert [v.crash_loop for v in verdicts] == [False, False, False, False, True]
    assert verdicts[-1].recent == 5


def test_old_crashes_are_forgotten() -> None:
    tracker = CrashTracker(RestartPolicy(base_delay=1, window=120, max_restarts=3))
    tracker.record_crash(0)
    tracker.record_crash(10)
    later = tracker.record_crash(200)  # the first two are outside the window
    assert later.recent == 1 and later.delay == 1 and not later.crash_loop
