"""The autogroup nice that lets the web server start first, and setting it back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from openmwaa.supervisor.startup_priority import BACKGROUND_NICE, autogroup_nice, set_autogroup_nice


def test_reads_and_writes_the_autogroup_file(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "autogroup").write_text("/autogroup-7 nice 0\n")
    assert autogroup_nice(42, tmp_path) == 0
    assert set_autogroup_nice(42, BACKGROUND_NICE, tmp_path)
    assert (tmp_path / "42" / "autogroup").read_text() == f"{BACKGROUND_NICE}\n"


def test_a_missing_process_or_kernel_feature_is_no_error(tmp_path: Path) -> None:
    assert not set_autogroup_nice(42, BACKGROUND_NICE, tmp_path)
    assert autogroup_nice(42, tmp_path) is None


def test_a_session_leader_is_lowered_and_set_back() -> None:
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        if autogroup_nice(child.pid) is None:
            pytest.skip("this kernel has no scheduler autogroups")
        assert set_autogroup_nice(child.pid, BACKGROUND_NICE)
        assert autogroup_nice(child.pid) == BACKGROUND_NICE
        assert set_autogroup_nice(child.pid, 0)  # back to 0 is always allowed
        assert autogroup_nice(child.pid) == 0
    finally:
        child.kill()
        child.wait()
