from openmwaa.services.throttle import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_per_key() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock)
    assert all(limiter.try_acquire("env-a") for _ in range(10))
    assert not limiter.try_acquire("env-a")
    assert limiter.try_acquire("env-b"), "buckets are per key"
    clock.now += 0.11  # one token's worth (0.1 s) and a little: float-safe
    assert limiter.try_acquire("env-a")
    assert not limiter.try_acquire("env-a")


def test_throttled_attempts_take_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.try_acquire("k")
    assert limiter.try_acquire("k")
    for _ in range(50):
        assert not limiter.try_acquire("k")
    clock.now += 0.5
    assert limiter.try_acquire("k"), "refused attempts must not have drained future tokens"


def test_rate_zero_is_off() -> None:
    limiter = RateLimiter(0)
    assert all(limiter.try_acquire("k") for _ in range(1000))
