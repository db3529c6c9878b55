from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from openmwaa.supervisor.pidfiles import (
    PidRecord,
    kill_orphans,
    leftover_processes,
    read_pidfiles,
    running_web_servers,
    running_workers,
    write_pidfile,
)
from openmwaa.supervisor.proc import ProcStat, read_stat


def stat(pid: int, session: int, start: int) -> ProcStat:
    return ProcStat(pid=pid, ppid=1, pgrp=pid, session=session, start_ticks=start)


def test_live_leader_with_the_recorded_start_time_is_ours() -> None:
    record = PidRecord("scheduler", 100, 5000)
    stats = [stat(100, 100, 5000), stat(101, 100, 5100), stat(200, 200, 10)]
    assert sorted(leftover_processes(record, stats)) == [100, 101]


def test_reused_pid_is_not_ours() -> None:
    record = PidRecord("scheduler", 100, 5000)
    stats = [stat(100, 100, 9999), stat(101, 100, 10000)]
    assert leftover_processes(record, stats) == []


def test_members_of_a_dead_leaders_session_are_ours_if_younger() -> None:
    record = PidRecord("scheduler", 100, 5000)
    stats = [stat(101, 100, 5100), stat(102, 100, 4000)]  # 102 predates the leader: not ours
    assert leftover_processes(record, stats) == [101]


def test_pidfiles_round_trip_and_garbage_is_dropped(tmp_path: Path) -> None:
    write_pidfile(tmp_path, PidRecord("scheduler", 42, 7))
    (tmp_path / "broken.pid").write_text("{not json")
    assert read_pidfiles(tmp_path) == [PidRecord("scheduler", 42, 7)]
    assert not (tmp_path / "broken.pid").exists()
    assert read_pidfiles(tmp_path / "missing") == []


def test_kill_orphans_ends_recorded_processes_only(tmp_path: Path) -> None:
    ours = subprocess.Popen(["sleep", "60"], start_new_session=True)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        ours_stat = read_stat(ours.pid)
        stranger_stat = read_stat(stranger.pid)
        assert ours_stat and stranger_stat
        write_pidfile(tmp_path, PidRecord("scheduler", ours.pid, ours_stat.start_ticks))
        # A pid file whose start time does not match: the pid was reused by someone else.
        write_pidfile(tmp_path, PidRecord("triggerer", stranger.pid, stranger_stat.start_ticks + 1))
        killed = kill_orphans(tmp_path, grace=5)
        assert killed == [ours.pid]
        assert ours.wait(timeout=5) == -15
        time.sleep(0.2)
        assert stranger.poll() is None
        assert read_pidfiles(tmp_path) == []
    finally:
        for p in (ours, stranger):
            p.kill()
            p.wait()


def test_running_web_servers_counts_live_replicas_of_the_web_server_only(tmp_path: Path) -> None:
    me = read_stat(os.getpid())
    assert me is not None
    run = tmp_path / "run"
    write_pidfile(run, PidRecord("api-server", me.pid, me.start_ticks))
    write_pidfile(run, PidRecord("api-server-1", me.pid, me.start_ticks))
    write_pidfile(run, PidRecord("api-server-2", me.pid, me.start_ticks + 1))  # pid reused since
    write_pidfile(run, PidRecord("scheduler", me.pid, me.start_ticks))
    assert running_web_servers(tmp_path) == 2
    assert running_web_servers(tmp_path / "nothing") == 0


def test_running_workers_counts_live_celery_workers_only(tmp_path: Path) -> None:
    me = read_stat(os.getpid())
    assert me is not None
    run = tmp_path / "run"
    for name in ("worker", "worker-3", "api-server", "scheduler", "triggerer"):
        write_pidfile(run, PidRecord(name, me.pid, me.start_ticks))
    write_pidfile(run, PidRecord("worker-1", me.pid, me.start_ticks + 1))  # pid reused since
    assert running_workers(tmp_path) == 2
    assert running_workers(tmp_path / "nothing") == 0
