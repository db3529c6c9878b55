"""CPU and memory by MWAA container kind, from a fake /proc and an environment's pid files."""

from __future__ import annotations

import json
from pathlib import Path

from openmwaa.supervisor.proc import all_stats
from openmwaa.supervisor.usage import (
    CLOCK_TICKS,
    CPU_COUNT,
    PAGE_SIZE,
    SCHEDULER,
    WEB_SERVER,
    WORKER,
    cpu_percent,
    memory_percent,
    sample_environment,
)


def fake_process(
    proc: Path, pid: int, *, ppid: int, session: int, start: int, cpu: int, pages: int, cmd: str
) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime ... starttime
    fields = ["S", ppid, pid, session, 0, 0, 0, 0, 0, 0, 0, cpu, 0, 0, 0, 20, 0, 1, 0, start]
    (folder / "stat").write_text(f"{pid} (air flow) " + " ".join(map(str, fields)) + "\n")
    (folder / "statm").write_text(f"1000 {pages} 0 0 0 0 0\n")
    (folder / "cmdline").write_bytes(cmd.replace(" ", "\0").encode())


def write_pidfile(home: Path, component: str, pid: int, start: int) -> None:
    run = home / "run"
    run.mkdir(parents=True, exist_ok=True)
    (run / f"{component}.pid").write_text(json.dumps({"pid": pid, "start_ticks": start}))


def test_processes_are_counted_by_container_kind(tmp_path: Path) -> None:
    proc, home = tmp_path / "proc", tmp_path / "home"
    fake_process(proc, 100, ppid=1, session=100, start=50, cpu=10, pages=100, cmd="airflow api-server")
    fake_process(proc, 200, ppid=1, session=200, start=60, cpu=20, pages=200, cmd="airflow scheduler")
    fake_process(
        proc, 201, ppid=200, session=200, start=70, cpu=30, pages=300, cmd="airflow worker -- LocalExecutor"
    )
    fake_process(proc, 300, ppid=1, session=300, start=80, cpu=40, pages=50, cmd="airflow triggerer")
    fake_process(proc, 400, ppid=1, session=400, start=90, cpu=99, pages=999, cmd="somebody else")
    write_pidfile(home, "api-server", 100, 50)
    write_pidfile(home, "scheduler", 200, 60)
    write_pidfile(home, "triggerer", 300, 80)
    write_pidfile(home, "dag-processor", 500, 99)  # gone
    sample = sample_environment(home, proc, all_stats(proc))
    kinds = {p.pid: p.kind for p in sample.processes}
    assert kinds == {100: WEB_SERVER, 200: SCHEDULER, 201: WORKER, 300: SCHEDULER}
    assert sample.replicas == {WEB_SERVER: 1, SCHEDULER: 1}
    total = 1000 * PAGE_SIZE
    assert memory_percent(sample.processes, SCHEDULER, total) == 100.0 * 250 / 1000
    assert memory_percent(sample.processes, WORKER, total) == 100.0 * 300 / 1000

    # Two seconds later the worker used 2 more seconds of CPU; a new process counts from 0.
    later = [
        p
        if p.pid != 201
        else type(p)(p.pid, p.start_ticks, p.kind, p.cpu_ticks + 2 * CLOCK_TICKS, p.rss_bytes)
        for p in sample.processes
    ]
    assert cpu_percent(sample.processes, later, 2.0, WORKER) == 100.0 / CPU_COUNT
    assert cpu_percent(sample.processes, later, 2.0, WEB_SERVER) == 0.0
