"""Log retention: component logs rotated by size, old files deleted, a size cap per environment."""

from __future__ import annotations

import os
import time
from pathlib import Path

from openmwaa.logs.retention import LogJanitor, RetentionPolicy, sweep

NOW = time.time()  # rotated copies are written now
DAY = 86400.0


def write(path: Path, size: int, *, age: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * (size - 1) + b"\n")
    os.utime(path, (NOW - age, NOW - age))
    return path


def policy(**overrides: float) -> RetentionPolicy:
    values = {"retention_seconds": 30 * DAY, "max_bytes": 10_000_000, "component_max_bytes": 1000, "keep": 2}
    values.update(overrides)
    return RetentionPolicy(**values)  # type: ignore[arg-type]


def test_a_big_component_log_is_rotated_and_kept_open_in_place(tmp_path: Path) -> None:
    log = write(tmp_path / "scheduler.log", 1500)
    inode = log.stat().st_ino
    with log.open("ab") as writer:  # the component's own handle, opened in append mode
        result = sweep(tmp_path, policy(), now=NOW)
        writer.write(b"after rotation\n")
    assert result.rotated == 1
    assert (tmp_path / "scheduler.log.1").stat().st_size == 1500
    assert log.read_bytes() == b"after rotation\n" and log.stat().st_ino == inode
    write(log, 1200)
    sweep(tmp_path, policy(), now=NOW)
    write(log, 1300)
    sweep(tmp_path, policy(), now=NOW)
    # keep=2: the oldest copy went.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "scheduler.log",
        "scheduler.log.1",
        "scheduler.log.2",
    ]
    assert (tmp_path / "scheduler.log.1").stat().st_size == 1300
    assert (tmp_path / "scheduler.log.2").stat().st_size == 1200
    small = write(tmp_path / "triggerer.log", 10)
    assert sweep(tmp_path, policy(), now=NOW).rotated == 0 and small.stat().st_size == 10


def test_old_task_logs_go_and_their_empty_folders_with_them(tmp_path: Path) -> None:
    old = write(
        tmp_path / "airflow" / "dag_id=a" / "run_id=r" / "task_id=t" / "attempt=1.log", 100, age=31 * DAY
    )
    new = write(tmp_path / "airflow" / "dag_id=a" / "run_id=s" / "task_id=t" / "attempt=1.log", 100, age=DAY)
    active = write(tmp_path / "scheduler.log", 100, age=90 * DAY)
    result = sweep(tmp_path, policy(), now=NOW)
    assert result.deleted == 1 and not old.exists() and new.exists() and active.exists()
    # Just emptied: left for an hour, in case Airflow is about to write there.
    assert (tmp_path / "airflow" / "dag_id=a" / "run_id=r" / "task_id=t").is_dir()
    sweep(tmp_path, policy(), now=NOW + 7200)
    assert not (tmp_path / "airflow" / "dag_id=a" / "run_id=r").exists()
    assert new.exists()


def test_the_size_cap_deletes_the_oldest_files_first(tmp_path: Path) -> None:
    files = [
        write(tmp_path / "airflow" / f"dag_id=d/run_id=r{i}/task_id=t/attempt=1.log", 1000, age=(10 - i) * 60)
        for i in range(10)
    ]
    write(tmp_path / "scheduler.log", 500)
    result = sweep(tmp_path, policy(max_bytes=5000, component_max_bytes=10_000), now=NOW)
    assert [f.exists() for f in files] == [False] * 6 + [True] * 4
    assert result.freed == 6000


def test_symbolic_links_are_neither_followed_nor_deleted(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "precious.log", 5000, age=365 * DAY)
    logs = tmp_path / "logs"
    (logs / "airflow").mkdir(parents=True)
    os.symlink(outside.parent, logs / "airflow" / "dag_id=evil")
    os.symlink(outside, logs / "airflow" / "old.log")
    sweep(logs, policy(max_bytes=1), now=NOW)
    assert outside.exists() and (logs / "airflow" / "old.log").is_symlink()


def test_the_janitor_sweeps_every_folder(tmp_path: Path) -> None:
    a = write(tmp_path / "a" / "api-server.log", 2000)
    b = write(tmp_path / "b" / "airflow" / "dag_id=x" / "attempt=1.log", 10, age=40 * DAY)
    janitor = LogJanitor(
        lambda: [tmp_path / "a", tmp_path / "b", tmp_path / "missing"], policy(), clock=lambda: NOW
    )
    janitor.sweep_all()
    assert a.stat().st_size == 0 and (tmp_path / "a" / "api-server.log.1").exists() and not b.exists()
