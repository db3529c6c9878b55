from __future__ import annotations

import os
from pathlib import Path

import pytest

from openmwaa.runtime.errors import StartupScriptError
from openmwaa.runtime.startup_script import parse_env0, run_startup_script

BASE = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KEEP": "same"}


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "startup.sh"
    path.write_text(body)
    return path


def test_exported_variables_are_captured(tmp_path: Path) -> None:
    s = script(
        tmp_path,
        'echo "installing things"\nexport MY_VAR="hello world"\nexport MULTI="a\nb"\nNOT_EXPORTED=1\n'
        "export KEEP=same\n",
    )
    exports = run_startup_script(s, BASE, tmp_path, tmp_path / "logs" / "startup.log")
    assert exports["MY_VAR"] == "hello world"
    assert exports["MULTI"] == "a\nb"
    assert "NOT_EXPORTED" not in exports
    assert "KEEP" not in exports  # unchanged
    assert "installing things" in (tmp_path / "logs" / "startup.log").read_text()


def test_changed_variables_count(tmp_path: Path) -> None:
    exports = run_startup_script(
        script(tmp_path, "export KEEP=changed\n"), BASE, tmp_path, tmp_path / "l.log"
    )
    assert exports["KEEP"] == "changed"


def test_failure_reports_the_scripts_output(tmp_path: Path) -> None:
    s = script(tmp_path, 'echo "pip: cannot find package foo" >&2\nexit 3\n')
    with pytest.raises(StartupScriptError, match="exited with code 3") as info:
        run_startup_script(s, BASE, tmp_path, tmp_path / "l.log")
    assert "cannot find package foo" in info.value.message


def test_timeout(tmp_path: Path) -> None:
    with pytest.raises(StartupScriptError, match="longer than"):
        run_startup_script(script(tmp_path, "sleep 30\n"), BASE, tmp_path, tmp_path / "l.log", timeout=0.5)


def test_parse_env0() -> None:
    assert parse_env0(b"A=1\0B=x=y\0C=\0\0junk\0") == {"A": "1", "B": "x=y", "C": ""}
