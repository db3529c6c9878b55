"""HangWatch: an unbroken run of failing observations, and only that, makes a component due."""

from __future__ import annotations

from openmwaa.supervisor.watchdog import HangWatch


def test_a_component_failing_without_a_break_is_due_after_the_timeout() -> None:
    watch = HangWatch(60)
    assert watch.observe(["scheduler"], 0) == []
    assert watch.observe(["scheduler"], 30) == []
    assert watch.observe(["scheduler"], 59.9) == []
    assert watch.observe(["scheduler"], 60) == ["scheduler"]


def test_a_healthy_observation_starts_the_count_again() -> None:
    watch = HangWatch(60)
    watch.observe(["scheduler"], 0)
    watch.observe([], 30)
    assert watch.observe(["scheduler"], 45) == []
    assert watch.observe(["scheduler"], 100) == []
    assert watch.observe(["scheduler"], 105) == ["scheduler"]


def test_a_reported_component_is_forgotten_so_its_restart_gets_a_fresh_count() -> None:
    watch = HangWatch(10)
    watch.observe(["triggerer"], 0)
    assert watch.observe(["triggerer"], 10) == ["triggerer"]
    assert watch.observe(["triggerer"], 15) == []
    assert watch.observe(["triggerer"], 25) == ["triggerer"]


def test_several_components_are_due_oldest_first_and_independently() -> None:
    watch = HangWatch(10)
    watch.observe(["triggerer"], 0)
    watch.observe(["triggerer", "api-server"], 5)
    assert watch.observe(["triggerer", "api-server"], 12) == ["triggerer"]
    assert watch.observe(["api-server", "triggerer"], 16) == ["api-server"]


def test_reset_forgets_and_zero_turns_the_watch_off() -> None:
    watch = HangWatch(10)
    watch.observe(["scheduler"], 0)
    watch.reset()
    assert watch.observe(["scheduler"], 10) == []
    off = HangWatch(0)
    assert not off.enabled
    assert off.observe(["scheduler"], 0) == []
    assert off.observe(["scheduler"], 1e9) == []
