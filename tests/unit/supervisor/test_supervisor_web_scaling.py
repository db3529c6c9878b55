"""The web server autoscaling policy, on a fake clock."""

from __future__ import annotations

from openmwaa.supervisor.web_scaling import ScalingPolicy, ScalingRules

RULES = ScalingRules(up_window=10, down_window=120, up_threshold=1.0, down_threshold=0.5)


def run(
    policy: ScalingPolicy,
    *,
    load: float,
    seconds: int,
    start: float,
    busy: float,
    current: int,
    low: int = 2,
    high: int = 5,
) -> tuple[int, float, float, list[int]]:
    """Feed ``load`` requests in flight for ``seconds`` s, one decision a second."""
    counts = []
    now = start
    for _ in range(seconds):
        now += 1
        busy += load
        current = policy.decide(now, busy, current, low, high)
        counts.append(current)
    return current, now, busy, counts


def test_starts_at_min_and_stays_there_when_idle() -> None:
    policy = ScalingPolicy(RULES)
    policy.reset(0)
    current, *_ = run(policy, load=0, seconds=600, start=0, busy=0, current=2)
    assert current == 2


def test_scales_up_within_the_up_window_under_load() -> None:
    policy = ScalingPolicy(RULES)
    policy.reset(0)
    _, _, _, counts = run(policy, load=4, seconds=15, start=0, busy=0, current=2)
    assert counts[-1] == 4  # a mean of 4 in flight wants 4 replicas at 1 each
    assert counts.index(4) <= 11


def test_never_beyond_max() -> None:
    policy = ScalingPolicy(RULES)
    policy.reset(0)
    current, *_ = run(policy, load=50, seconds=60, start=0, busy=0, current=2, high=3)
    assert current == 3


def scaled_to_five() -> tuple[ScalingPolicy, int, float, float]:
    """A policy that a load of 5 in flight for 20 s took from 2 replicas to 5: (policy, count, now, busy)."""
    policy = ScalingPolicy(RULES)
    policy.reset(0)
    current, now, busy, _ = run(policy, load=5, seconds=20, start=0, busy=0, current=2)
    assert current == 5
    return policy, current, now, busy


def test_scales_down_after_sustained_low_load_only_straight_to_what_the_load_needs() -> None:
    policy, current, now, busy = scaled_to_five()
    current, now, busy, counts = run(policy, load=0, seconds=110, start=now, busy=busy, current=current)
    assert current == 5  # not yet: the load fell less than the down window ago
    current, now, busy, counts = run(policy, load=0, seconds=30, start=now, busy=busy, current=current)
    assert current == 2 and not {3, 4} & set(counts)  # to Min in one step, one window after the load
    current, now, busy, counts = run(policy, load=0, seconds=600, start=now, busy=busy, current=current)
    assert set(counts) == {2}


def test_a_light_load_keeps_the_replicas_it_needs() -> None:
    """1.2 in flight needs 3 replicas at 0.5 each: from 5 it goes to 3, not to Min."""
    policy, current, now, busy = scaled_to_five()
    current, now, busy, counts = run(policy, load=1.2, seconds=300, start=now, busy=busy, current=current)
    assert current == 3 and set(counts) == {5, 3}


def test_moderate_load_neither_scales_up_nor_down() -> None:
    """Between the thresholds (hysteresis): 1.5 in flight on 2 replicas stays at 2 for good."""
    policy = ScalingPolicy(RULES)
    policy.reset(0)
    current, *_ = run(policy, load=1.5, seconds=600, start=0, busy=0, current=2)
    assert current == 2
    policy = ScalingPolicy(RULES)
    policy.reset(0)
    current, _, _, counts = run(policy, load=1.5, seconds=600, start=0, busy=0, current=3)
    assert set(counts) == {3}
