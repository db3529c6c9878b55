"""A starting web server replica gets the CPU first: the pure decision, then through the runner.

The runner tests use test_supervisor_web_replicas' harness (fake processes, per-URL health
answers, a fake clock) and follow each fake process's autogroup nice by pid.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from openmwaa.supervisor.commands import Shutdown, Update
from openmwaa.supervisor.group import ProcessHandle
from openmwaa.supervisor.health import HealthReport
from openmwaa.supervisor.replica_priority import PRIORITY_LIMIT, ReplicaPriority, background_wanted
from tests.unit.supervisor.test_supervisor_runner import Clock, FakeLauncher, FakeProcess, spec
from tests.unit.supervisor.test_supervisor_web_replicas import Replicas, make, web_update

OTHERS = ["api-server", "dag-processor", "scheduler", "triggerer"]
SECOND = "http://127.0.0.1:9001"  # api-server-1's URL in the harness
THIRD = "http://127.0.0.1:9002"


# The decision ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("starting", "now", "expected"),
    [
        ({}, 0.0, set()),  # nothing starts: nothing in the background
        ({"web-1": 0.0}, 5.0, {"web", "web-2", "scheduler"}),  # the serving replicas too
        ({"web-1": 0.0, "web-2": 3.0}, 5.0, {"web", "scheduler"}),  # two start: both first
        ({"web-1": 0.0}, PRIORITY_LIMIT, set()),  # starting for too long: no more priority
        ({"web-1": 0.0, "web-2": 100.0}, PRIORITY_LIMIT, {"web", "scheduler", "web-1"}),
    ],
)
def test_everything_else_waits_while_a_replica_starts(
    starting: dict[str, float], now: float, expected: set[str]
) -> None:
    running = ["web", "web-1", "web-2", "scheduler"]
    assert background_wanted(running, starting, now) == expected


def test_the_spared_ones_are_never_in_the_background() -> None:
    running = ["web", "web-1", "scheduler"]
    assert background_wanted(running, {"web-1": 0.0}, 1.0, spared=["web", "web-1"]) == {"scheduler"}


def test_each_process_is_lowered_once_and_set_back_once_a_restarted_one_is_a_new_process() -> None:
    clock, launcher = Clock(), FakeLauncher()
    priority = ReplicaPriority(launcher, clock)
    web, new, scheduler = (
        FakeProcess(n, pid, Path("/x")) for n, pid in [("web", 1), ("web-1", 2), ("scheduler", 3)]
    )
    running: dict[str, ProcessHandle] = {"web": web, "web-1": new, "scheduler": scheduler}
    priority.update(running, ["web-1"])
    priority.update(running, ["web-1"])
    assert launcher.background == [("scheduler", True), ("web", True)]
    restarted = FakeProcess("scheduler", 4, Path("/x"))
    priority.update({**running, "scheduler": restarted}, ["web-1"])
    assert launcher.background[2:] == [("scheduler", False), ("scheduler", True)]
    priority.update({**running, "scheduler": restarted}, [])
    assert priority.lowered() == []
    assert sorted(launcher.background[4:]) == [("scheduler", False), ("web", False)]


def test_a_replica_restarted_under_the_same_name_gets_its_own_time_limit() -> None:
    clock, launcher = Clock(), FakeLauncher()
    priority = ReplicaPriority(launcher, clock, limit=10)
    web = FakeProcess("web", 1, Path("/x"))
    priority.update({"web": web, "web-1": FakeProcess("web-1", 2, Path("/x"))}, ["web-1"])
    clock.now += 10
    priority.update({"web": web, "web-1": FakeProcess("web-1", 2, Path("/x"))}, ["web-1"])
    assert priority.lowered() == []  # the same process, starting for 10 s
    priority.update({"web": web, "web-1": FakeProcess("web-1", 3, Path("/x"))}, ["web-1"])
    assert priority.lowered() == ["web"]  # a new process (the old one crashed)


# Through the runner ------------------------------------------------------------------------


class Nice:
    """The autogroup nice the launcher left each fake process at (by pid)."""

    def __init__(self, r: Replicas) -> None:
        self.r = r
        self.background: dict[int, bool] = {}
        launcher = r.launcher

        def record(handle: ProcessHandle, background: bool) -> bool:
            self.background[handle.pid] = background
            return True

        launcher.set_background = record  # type: ignore[method-assign]

    def lowered(self) -> list[str]:
        return sorted(p.name for p in self.r.launcher.spawned if self.background.get(p.pid))


def harness(tmp_path: Path, *, low: int, high: int, silent: tuple[str, ...] = ()) -> tuple[Replicas, Nice]:
    r = make(tmp_path, low=1, high=1)  # AVAILABLE with one replica, nothing lowered
    nice = Nice(r)
    r.probe.silent.update(silent)
    prepared = r.runner._lifecycle.prepared
    assert prepared is not None
    r.runner._lifecycle.prepared = replace(prepared, spec=replace(prepared.spec, web_servers=(low, high)))
    return r, nice


def test_a_scaled_up_replica_starts_with_everything_else_in_the_background(tmp_path: Path) -> None:
    r, nice = harness(tmp_path, low=1, high=2, silent=(SECOND,))
    held = [r.runner.lease() for _ in range(2)]  # two requests in flight, for good
    while r.web() == ["api-server"]:
        assert nice.lowered() == []
        r.tick(1)
    assert r.web() == ["api-server", "api-server-1"]
    assert nice.lowered() == OTHERS  # the serving replica too
    r.tick(1)
    assert nice.lowered() == OTHERS  # still starting
    r.probe.silent.clear()
    r.tick(1)
    assert len(r.rotation()) == 2
    assert nice.lowered() == [] and not any(nice.background.values())  # the moment it is in rotation
    assert all(lease is not None for lease in held)


def test_a_crashed_replicas_replacement_gets_priority_over_all_but_the_serving_replicas(
    tmp_path: Path,
) -> None:
    r, nice = harness(tmp_path, low=2, high=2)
    r.tick(1)
    r.tick(1)
    assert len(r.rotation()) == 2 and nice.lowered() == []
    r.probe.silent.add(SECOND)
    r.launcher.live("api-server-1").code = -9
    r.tick(0.01)
    assert nice.lowered() == []  # nothing starts during the backoff
    r.tick(2)  # restarted: the replica in rotation carries the load meanwhile, at full speed
    assert nice.lowered() == ["dag-processor", "scheduler", "triggerer"]
    r.launcher.live("api-server-1").code = 1  # it fails to start
    r.tick(0.01)
    assert nice.lowered() == []


def test_a_replica_that_never_answers_keeps_priority_only_for_the_limit(tmp_path: Path) -> None:
    r, nice = harness(tmp_path, low=2, high=2, silent=(SECOND,))
    r.tick(1)
    assert nice.lowered() == OTHERS
    r.tick(PRIORITY_LIMIT - 2)
    assert nice.lowered() == OTHERS
    r.tick(2)
    assert nice.lowered() == [] and not any(nice.background.values())


def test_overlapping_scale_ups_keep_the_others_back_until_the_last_new_replica_answers(
    tmp_path: Path,
) -> None:
    r, nice = harness(tmp_path, low=2, high=3, silent=(SECOND, THIRD))
    r.tick(1)  # MinWebservers: a second replica
    assert nice.lowered() == OTHERS
    held = [r.runner.lease() for _ in range(3)]
    while len(r.web()) < 3:
        r.tick(1)
    assert nice.lowered() == OTHERS  # both new ones first
    r.probe.silent.discard(SECOND)
    r.tick(1)
    assert nice.lowered() == sorted([*OTHERS, "api-server-1"])  # it serves; the third still starts
    r.probe.silent.clear()
    r.tick(1)
    assert len(r.rotation()) == 3 and not any(nice.background.values())
    assert all(lease is not None for lease in held)


@pytest.mark.parametrize("command", ["shutdown", "update"])
def test_a_shutdown_or_an_update_while_a_replica_starts_sets_everything_back_first(
    tmp_path: Path, command: str
) -> None:
    r, nice = harness(tmp_path, low=2, high=2, silent=(SECOND,))
    r.tick(1)
    assert nice.lowered() == OTHERS
    at_step: list[list[str]] = []
    lifecycle = r.runner._lifecycle
    handle, stop_everything = lifecycle.handle, lifecycle.stop_everything

    def handling(command: Update) -> None:
        at_step.append(nice.lowered())
        handle(command)

    def stopping() -> None:
        at_step.append(nice.lowered())
        stop_everything()

    lifecycle.handle = handling  # type: ignore[method-assign,assignment]
    lifecycle.stop_everything = stopping  # type: ignore[method-assign]
    if command == "shutdown":
        assert not r.runner.run_once(Shutdown())
    else:
        r.probe.silent.clear()  # (the update's rolling restart waits for each replica to answer)
        old = replace(spec(tmp_path), web_servers=(2, 2))
        new = replace(spec(tmp_path, **{"api.workers": "2"}), web_servers=(2, 2))
        r.runner.run_once(Update(new, old))
    assert at_step[0] == []
    if command == "shutdown":
        assert not any(nice.background.values())


def test_a_rolling_restarts_new_replicas_start_first_and_everything_is_set_back(tmp_path: Path) -> None:
    r, nice = harness(tmp_path, low=2, high=2)
    r.tick(1)
    r.tick(1)
    probe = r.runner._replicas._probe
    lowered_at_probe: list[tuple[str, list[str]]] = []

    def recording(base_url: str, major: int) -> HealthReport:
        lowered_at_probe.append((base_url, nice.lowered()))
        return probe(base_url, major)

    r.runner._replicas._probe = recording
    web_update(r, tmp_path, 2, 2)
    # The spare (api-server-2) first, then each replica restarted in its place: while each
    # starts, everything else waits; nothing is left lowered.
    assert lowered_at_probe[0] == (THIRD, sorted([*OTHERS, "api-server-1"]))
    restarted = [lowered for url, lowered in lowered_at_probe if url == SECOND]
    assert restarted and restarted[0] == sorted([*OTHERS, "api-server-2"])
    assert not any(nice.background.values())
