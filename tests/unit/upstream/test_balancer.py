"""The replica balancer: least requests in flight, rotation, draining and the busy-time signal."""

from __future__ import annotations

from openmwaa.upstream.balancer import ReplicaSet, retry_elsewhere
from openmwaa.upstream.errors import ClosedBeforeAnswer, ConnectFailed, UpstreamTimeout

A, B, C = "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_empty_set_gives_no_lease() -> None:
    assert ReplicaSet().acquire() is None


def test_idle_replicas_take_turns() -> None:
    pool = ReplicaSet()
    pool.add(A)
    pool.add(B)
    urls = []
    for _ in range(4):
        lease = pool.acquire()
        assert lease is not None
        urls.append(lease.url)
        lease.release()
    assert sorted(urls) == [A, A, B, B]


def test_the_replica_with_fewest_requests_in_flight_is_chosen() -> None:
    pool = ReplicaSet()
    for url in (A, B, C):
        pool.add(url)
    held = [pool.acquire() for _ in range(3)]
    assert sorted(h.url for h in held if h) == [A, B, C]
    first = held[0]
    assert first is not None
    first.release()
    following = pool.acquire()
    assert following is not None and following.url == first.url
    assert pool.in_flight(first.url) == 1


def test_release_is_idempotent() -> None:
    pool = ReplicaSet()
    pool.add(A)
    lease = pool.acquire()
    assert lease is not None
    lease.release()
    lease.release()
    assert pool.in_flight(A) == 0


def test_a_removed_replica_gets_no_new_request_but_its_requests_finish() -> None:
    pool = ReplicaSet()
    pool.add(A)
    pool.add(B)
    held = [pool.acquire(), pool.acquire()]
    pool.remove(A)
    assert all((lease := pool.acquire()) and lease.url == B for _ in range(3))
    assert pool.in_flight(A) == 1
    for lease in held:
        assert lease is not None
        lease.release()
    assert pool.in_flight(A) == 0


def test_a_failed_lease_takes_its_replica_out_of_rotation() -> None:
    pool = ReplicaSet()
    pool.add(A)
    pool.add(B)
    lease = pool.acquire()
    assert lease is not None
    lease.failed()
    assert pool.members() == [B if lease.url == A else A]
    assert pool.in_flight(lease.url) == 0


def test_busy_seconds_is_the_integral_of_requests_in_flight() -> None:
    clock = Clock()
    pool = ReplicaSet(clock)
    pool.add(A)
    one = pool.acquire()
    clock.now = 2.0
    two = pool.acquire()
    clock.now = 3.0
    assert one is not None and two is not None
    one.release()
    clock.now = 5.0
    two.release()
    clock.now = 9.0
    # 1 in flight for 2 s, 2 for 1 s, 1 for 2 s, then none.
    assert pool.busy_seconds() == 2 + 2 + 2


def test_which_failures_may_go_to_another_replica() -> None:
    assert retry_elsewhere("POST", ConnectFailed("refused"))
    assert retry_elsewhere("GET", ClosedBeforeAnswer("reset"))
    assert not retry_elsewhere("POST", ClosedBeforeAnswer("reset"))
    assert not retry_elsewhere("GET", UpstreamTimeout("slow"))
