"""Files openmwaa writes in an environment's home: links planted there are refused, never followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openmwaa.runtime.beneath import open_beneath, open_log
from openmwaa.runtime.errors import DatabaseSetupError
from openmwaa.supervisor import upgrade
from openmwaa.supervisor.pidfiles import PidRecord, read_pidfiles, remove_pidfile, write_pidfile
from openmwaa.supervisor.process import log_tail


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / "logs").mkdir(parents=True)
    return tmp_path / "home"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the home that a planted link points at."""
    path = tmp_path / "secret"
    path.write_text("root's secret\n")
    return path


def test_a_log_replaced_by_a_link_is_refused(home: Path, victim: Path) -> None:
    (home / "logs" / "scheduler.log").symlink_to(victim)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        open_log(home / "logs" / "scheduler.log", home)
    assert victim.read_text() == "root's secret\n"


def test_a_folder_replaced_by_a_link_is_refused(home: Path, victim: Path) -> None:
    (home / "logs").rmdir()
    (home / "logs").symlink_to(victim.parent)
    with pytest.raises(OSError):
        open_log(home / "logs" / "secret", home)
    assert victim.read_text() == "root's secret\n"


def test_missing_folders_are_made_and_paths_outside_base_open_plainly(home: Path, tmp_path: Path) -> None:
    os.close(open_beneath(home, home / "a" / "b" / "c.log", os.O_WRONLY | os.O_CREAT))
    assert (home / "a" / "b" / "c.log").is_file()
    os.close(open_log(tmp_path / "elsewhere" / "x.log", home))
    assert (tmp_path / "elsewhere" / "x.log").is_file()


def test_the_upgrade_journal_and_restore_write_through_no_planted_link(home: Path, victim: Path) -> None:
    (home / "upgrade.json.tmp").symlink_to(victim)
    upgrade.write_journal(home, upgrade.Upgrade("3.2.1", "3.3.1"))
    assert upgrade.read_journal(home) == upgrade.Upgrade("3.2.1", "3.3.1")
    (home / "airflow.db.before-upgrade").write_bytes(b"the copy")
    (home / "airflow.db.restore.tmp").symlink_to(victim)
    upgrade.DatabaseCopy(home, None, None).put_back()
    assert (home / "airflow.db").read_bytes() == b"the copy"
    assert victim.read_text() == "root's secret\n"


def test_a_database_replaced_by_a_link_is_not_copied(home: Path, victim: Path) -> None:
    (home / "airflow.db").symlink_to(victim)
    with pytest.raises(DatabaseSetupError, match="symbolic link"):
        upgrade.DatabaseCopy(home, None, None).take()
    assert not (home / "airflow.db.before-upgrade").exists()


def test_log_tail_does_not_quote_a_file_a_link_points_at(home: Path, victim: Path) -> None:
    (home / "logs" / "scheduler.log").symlink_to(victim)
    assert log_tail(home / "logs" / "scheduler.log") == ""


def test_pid_files_go_through_no_link(home: Path, victim: Path) -> None:
    run = home / "run"
    write_pidfile(run, PidRecord("scheduler", 123, 456))
    assert read_pidfiles(run) == [PidRecord("scheduler", 123, 456)]
    (run / "scheduler.pid.tmp").symlink_to(victim)  # a planted temporary file is replaced, not followed
    write_pidfile(run, PidRecord("scheduler", 124, 457))
    assert victim.read_text() == "root's secret\n"
    assert read_pidfiles(run) == [PidRecord("scheduler", 124, 457)]
    remove_pidfile(run, "scheduler")
    assert read_pidfiles(run) == []


def test_a_run_folder_replaced_by_a_link_is_neither_written_nor_read(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "scheduler.pid").write_text('{"pid": 1, "start_ticks": 0}')
    (home / "run").symlink_to(elsewhere)
    assert read_pidfiles(home / "run") == []  # pid 1 is not named to kill_orphans
    with pytest.raises(OSError):
        write_pidfile(home / "run", PidRecord("triggerer", 5, 6))
    assert sorted(p.name for p in elsewhere.iterdir()) == ["scheduler.pid"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_pid_file_openmwaa_did_not_write_is_ignored(home: Path) -> None:
    run = home / "run"
    write_pidfile(run, PidRecord("scheduler", 123, 456))
    forged = run / "triggerer.pid"
    forged.write_text('{"pid": 1, "start_ticks": 0}')
    os.chown(forged, 65534, 65534)  # as the environment's user would leave it
    assert read_pidfiles(run) == [PidRecord("scheduler", 123, 456)]
