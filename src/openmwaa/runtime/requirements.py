"""An environment's requirements.txt, installed for that environment only.

Packages go to ``<home>/site/<digest>`` (``uv pip install --target``), which the components find
on PYTHONPATH. The runtime's own packages are pinned as constraints, so a requirement can add
packages but never swap out a version Airflow was installed with. The directory is named by a
digest of its inputs: an update prepares the new one while the old one still serves, and a
re-run with the same file is free.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from openmwaa.runtime.constraints import normalize
from openmwaa.runtime.errors import RequirementsInstallError, output_tail
from openmwaa.runtime.inherited_env import inherited_environment
from openmwaa.runtime.installer import Runtime, find_uv
from openmwaa.runtime.isolation import EnvironmentUser, give, popen_args

log = logging.getLogger(__name__)

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
    user: EnvironmentUser | None = None,
) -> Path:
    """Install ``requirements`` for one environment; the directory to put on PYTHONPATH.

    With ``user``, the installer (and the build scripts of what it installs) runs as that
    user, with the environment's home as its home (and cache).
    """
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
        env = installer_env(os.environ, home if user else None)
        _pip_install(_Installer(runtime, env, user), requirements, staging, timeout)
        marker = os.open(staging / _DONE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(marker, "w") as handle:
            handle.write(requirements.name + "\n")
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


#: ``-c``/``--constraint`` lines naming Airflow's published constraints (which MWAA's guide tells
#: users to put at the top of requirements.txt): the shipped constraints of the runtime already
#: are those pins, and the file cannot be fetched where only the package index is reachable.
_AIRFLOW_CONSTRAINTS_LINE = re.compile(
    r"\s*(?:-c|--constraint)(?:\s+|=)[\"']?https://raw\.githubusercontent\.com/apache/airflow/"
    r"constraints-[0-9.]+/constraints-[0-9.]+\.txt[\"']?\s*(?:#.*)?"
)


def effective_requirements(text: str) -> tuple[str, list[str]]:
    """The requirements to resolve, and the lines dropped because the runtime's pins replace them."""
    kept: list[str] = []
    dropped: list[str] = []
    for line in text.splitlines():
        (dropped if _AIRFLOW_CONSTRAINTS_LINE.fullmatch(line) else kept).append(line)
    return "\n".join(kept) + "\n", dropped


def installer_env(environ: Mapping[str, str], home: Path | None = None) -> dict[str, str]:
    """The environment of ``pip``/``uv``: the allow-list plus the installers' own settings.

    A requirement's build script runs in it, so the operator's credentials stay out; the
    package index settings (``PIP_*``, ``UV_*``) and the operator's ``HOME`` (the installers'
    cache; ``home`` instead when given) are needed to install at all.
    """
    env = inherited_environment(environ, home=home or environ.get("HOME", "/"))
    env.update({k: v for k, v in environ.items() if k.startswith(("PIP_", "UV_"))})
    return env


@dataclass(frozen=True)
class _Installer:
    runtime: Runtime
    env: Mapping[str, str] = field(repr=False)
    #: Who runs the installer (None: openmwaa's own user).
    user: EnvironmentUser | None


def _pip_install(installer: _Installer, requirements: Path, target: Path, timeout: float) -> None:
    """Install what ``requirements`` adds to the runtime, and nothing the runtime already holds.

    With uv: resolve the file against the runtime's pins, then install only the packages the
    runtime lacks, without their dependencies (the resolution named them all). A plain
    ``--target`` install would copy every dependency again, Airflow itself included for a provider.
    """
    runtime = installer.runtime
    deadline = time.monotonic() + timeout
    text, dropped = effective_requirements(_read(requirements))
    if dropped:
        log.info("requirements.txt: Airflow's published constraints are the runtime's own pins: %s", dropped)
    source = target / ".requirements.in"
    target.mkdir(parents=True, exist_ok=True)
    source.write_text(text)
    uv = find_uv()
    pins = ["-c", str(runtime.constraints)]
    if not uv:
        give([target], installer.user)
        _run(
            [
                str(runtime.python),
                "-m",
                "pip",
                "--disable-pip-version-check",
                "install",
                "-r",
                str(source),
                *pins,
                "--target",
                str(target),
            ],
            deadline,
            installer,
        )
        return
    resolved = _run(
        [
            uv,
            "pip",
            "compile",
            str(source),
            *pins,
            "--python",
            str(runtime.python),
            "--no-header",
            "--no-annotate",
            "--emit-index-url",
            "--emit-find-links",
            "--quiet",
        ],
        deadline,
        installer,
    )
    installed = _installed(uv, installer, deadline)
    missing = [line for line in resolved.splitlines() if _needed(line, installed)]
    if not any(line and not line.startswith("-") for line in missing):
        return  # everything asked for is part of the runtime already
    wanted = target / ".requirements.txt"
    wanted.write_text("\n".join(missing) + "\n")
    give([target], installer.user)  # the install writes into it as the environment's user
    _run(
        [
            uv,
            "pip",
            "install",
            "--no-deps",
            "--compile-bytecode",
            "--python",
            str(runtime.python),
            "-r",
            str(wanted),
            "--target",
            str(target),
        ],
        deadline,
        installer,
    )


def _needed(line: str, installed: dict[str, str]) -> bool:
    """A line of the resolution that must be installed: options, and packages the runtime lacks."""
    name, sep, version = line.partition("==")
    if not sep:
        return bool(line.strip()) and not line.lstrip().startswith("#")
    return installed.get(normalize(name.strip())) != version.strip()


def _installed(uv: str, installer: _Installer, deadline: float) -> dict[str, str]:
    frozen = _run([uv, "pip", "freeze", "--python", str(installer.runtime.python)], deadline, installer)
    return {normalize(n): v for n, sep, v in (ln.partition("==") for ln in frozen.splitlines()) if sep}


def _read(requirements: Path) -> str:
    try:
        return requirements.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise RequirementsInstallError(f"Cannot read the requirements file: {exc.strerror}.") from exc


def _run(argv: list[str], deadline: float, installer: _Installer) -> str:
    runtime = installer.runtime
    timeout = max(1.0, deadline - time.monotonic())
    try:
        done: subprocess.CompletedProcess[bytes] = subprocess.run(
            argv,
            capture_output=True,
            timeout=timeout,
            env=dict(installer.env),
            check=False,
            **popen_args(installer.user),
        )
    except subprocess.TimeoutExpired as exc:
        raise RequirementsInstallError(
            "Installing requirements.txt took too long; remove slow or large packages."
        ) from exc
    if done.returncode != 0:
        raise RequirementsInstallError(
            "Installing requirements.txt failed. As on MWAA, the packages Airflow depends on (Airflow "
            f"itself among them) stay at the versions installed with Apache Airflow {runtime.version} "
            "and cannot be changed by requirements.txt:\n" + output_tail(done.stderr or done.stdout)
        )
    return done.stdout.decode("utf-8", errors="replace")
