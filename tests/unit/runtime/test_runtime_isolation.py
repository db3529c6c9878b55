"""Per-environment users: names, the data directory's modes, running as the user, reachability."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from openmwaa.runtime.errors import EnvironmentSetupError
from openmwaa.runtime.isolation import (
    EnvironmentUser,
    check_reachable,
    hand_over,
    popen_args,
    protect_data_dir,
    user_name,
)

AS_ROOT = os.geteuid() == 0
NOBODY = EnvironmentUser("nobody", 65534, 65534)
needs_root = pytest.mark.skipif(not AS_ROOT, reason="switching users needs root")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_user_names_are_short_stable_and_distinct() -> None:
    a, b = user_name("123456789012/us-east-1/a"), user_name("123456789012/us-east-1/b")
    assert a == user_name("123456789012/us-east-1/a")
    assert a != b
    assert a.startswith("omw-") and len(a) <= 32 and a.replace("-", "").isalnum()


def test_isolated_data_dir_lets_users_through_but_keeps_the_state_database_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "openmwaa.db"
    protect_data_dir(data, f"sqlite:///{db}", isolate=True)
    assert mode(data) == 0o711
    assert mode(db) == 0o600  # created private before SQLAlchemy opens it


def test_a_state_database_left_readable_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("openmwaa.db", "openmwaa.db-wal"):
        (data / name).write_bytes(b"")
        (data / name).chmod(0o644)
    protect_data_dir(data, f"sqlite:///{data / 'openmwaa.db'}", isolate=False)
    assert mode(data / "openmwaa.db") == mode(data / "openmwaa.db-wal") == 0o600


def test_not_isolated_the_data_dir_stays_private(tmp_path: Path) -> None:
    protect_data_dir(tmp_path / "data", "postgresql://db/openmwaa", isolate=False)
    assert mode(tmp_path / "data") == 0o700


def test_popen_args_of_no_user_change_nothing() -> None:
    assert popen_args(None) == {}


@needs_root
def test_a_process_started_as_the_user_has_its_ids_and_no_other_group() -> None:
    uid = subprocess.run(["id", "-u"], capture_output=True, text=True, check=True, **popen_args(NOBODY))
    assert uid.stdout.split() == ["65534"]
    groups = subprocess.run(["id", "-G"], capture_output=True, text=True, check=True, **popen_args(NOBODY))
    assert groups.stdout.split() == ["65534"]


@needs_root
def test_hand_over_gives_the_home_to_the_user_except_openmwaas_run_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    (home / "run").mkdir()
    (home / "logs" / "x.log").write_text("x")
    outside = tmp_path / "outside"
    outside.write_text("root's")
    (home / "link").symlink_to(outside)
    (home / "dirlink").symlink_to(tmp_path)  # a folder link: its target is not walked
    hand_over(home, NOBODY)
    assert mode(home) == 0o700
    for path in (home, home / "logs", home / "logs" / "x.log"):
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)
    assert (home / "link").lstat().st_uid == 65534
    assert outside.stat().st_uid == 0  # the link was changed, not followed
    assert tmp_path.stat().st_uid == 0 and (tmp_path / "outside").stat().st_uid == 0
    assert (home / "run").stat().st_uid == 0


@needs_root
def test_a_runtime_the_user_cannot_reach_fails_with_the_directory_to_open() -> None:
    # Not in pytest's temporary root: that is closed to other users itself.
    closed = Path(tempfile.mkdtemp(prefix="openmwaa-reach-"))
    try:
        (closed / "dags").mkdir()
        python = Path("/usr/bin/python3") if Path("/usr/bin/python3").exists() else Path(os.__file__)
        with pytest.raises(EnvironmentSetupError, match=f"{closed}.*chmod o\\+x"):
            check_reachable(NOBODY, python, [closed / "dags"], {"PATH": "/usr/bin:/bin"}, cwd=Path("/"))
        closed.chmod(0o711)
        check_reachable(NOBODY, python, [closed / "dags"], {"PATH": "/usr/bin:/bin"}, cwd=Path("/"))
    finally:
        shutil.rmtree(closed, ignore_errors=True)
