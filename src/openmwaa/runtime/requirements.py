"""An environment's requirements.txt, installed for that environment only.

Packages go to ``<home>/site/<digest>`` (``uv pip install --target``), which the components find
on PYTHONPATH. The runtime's own packages are pinned as constraints, so a requirement can add
packages but never swap out a version Airflow was installed with. The directory is named by a
digest of its inputs: an update prepares the new one while the old one still serves, and a
re-run with the same file is free.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final

from openmwaa.runtime.errors import RequirementsInstallError, output_tail
from openmwaa.runtime.installer import Runtime, find_uv

INSTALL_TIMEOUT: Final = 900.0
_DONE: Final = ".openmwaa-installed"


def requirements_dir(home: Path, runtime: Runtime, requirements: Path) -> Path:
    digest = hashlib.sha256()
    digest.update(runtime.root.name.encode() + b"\0")
    digest.update(requirements.read_bytes())
    return home / "site" / digest.hexdigest()[:16]


def install_requirements(
    runtime: Runtime,
    requirements: Path,
    home: Path,
    progress: Callable[[str], None] = lambda _msg: None,
    *,
    timeout: float = INSTALL_TIMEOUT,
) -> Path:
    """Install ``requirements`` for one environment; the directory to put on PYTHONPATH."""
    try:
        target = requirements_dir(home, runtime, requirements)
    except OSError as exc:
        raise RequirementsInstallError(f"Cannot read the requirements file: {exc.strerror}.") from exc
    if (target / _DONE).is_file():
        return target
    progress("Installing requirements.txt")
    staging = target.with_name(f".tmp-{target.name}-{uuid.uuid4().hex[:8]}")
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        _pip_install(runtime, requirements, staging, timeout)
        (staging / _DONE).write_text(requirements.name + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def remove_other_requirements(home: Path, keep: Path | None) -> None:
    """Drop requirement directories no configuration uses any more."""
    site = home / "site"
    if not site.is_dir():
        return
    for entry in site.iterdir():
        if entry != keep:
            shutil.rmtree(entry, ignore_errors=True)


def _pip_install(runtime: Runtime, requirements: Path, target: Path, timeout: float) -> None:
    uv = find_uv()
    common = ["-r", str(requirements), "-c", str(runtime.constraints), "--target", str(target)]
    if uv:
        argv = [uv, "pip", "install", "--compile-bytecode", "--python", str(runtime.python), *common]
    else:
        argv = [str(runtime.python), "-m", "pip", "--disable-pip-version-check", "install", *common]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RequirementsInstallError(
            f"Installing requirements.txt took longer than {timeout:.0f} s; remove slow or large packages."
        ) from exc
    if done.returncode != 0:
        raise RequirementsInstallError(
            "Installing requirements.txt failed (packages Airflow depends on are pinned to the "
            f"versions installed with Apache Airflow {runtime.version}):\n"
            + output_tail(done.stderr or done.stdout)
        )
