"""A test-only virtualenv with Airflow and the Amazon provider, for the MwaaHook tests.

Created on first use with uv and cached across runs (under a lock: parallel runs share it).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import AIRFLOW3

UV = Path(sys.executable).with_name("uv")
VENV = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "openmwaa/test-venvs/mwaa-hook"
REQUIREMENTS = (f"apache-airflow=={AIRFLOW3}", "apache-airflow-providers-amazon")


def mwaa_hook_python() -> Path:
    """The venv's interpreter, building the venv if it is missing or was built from other requirements."""
    python = VENV / "bin" / "python"
    marker = VENV / ".openmwaa-ready"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with (VENV.parent / "mwaa-hook.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == "\n".join(REQUIREMENTS):
            return python
        subprocess.run(
            [str(UV), "venv", "--quiet", "--clear", "--python", sys.executable, str(VENV)], check=True
        )
        subprocess.run(
            [str(UV), "pip", "install", "--quiet", "--python", str(python), *REQUIREMENTS],
            check=True,
            timeout=900,
        )
        marker.write_text("\n".join(REQUIREMENTS))
    return python
