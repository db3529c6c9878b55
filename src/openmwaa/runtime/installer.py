"""Airflow runtimes: one virtual environment per Airflow version, installed once and shared.

A runtime lives in ``<cache_dir>/airflow-<version>-py<X.Y>-r<RECIPE>``, installed against the
constraints openmwaa ships for that Airflow and Python version (:mod:`openmwaa.runtime.constraints`).
It is built in a temporary directory beside that path and renamed into place only when complete
(with a marker file written last), so a half-built directory is never taken for an installed runtime. A file
lock per runtime makes concurrent installs of the same version, from threads or processes,
wait for one another instead of racing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from openmwaa.runtime.constraints import constraints_file, normalize, parse_pins, shipped_pythons
from openmwaa.runtime.errors import RuntimeInstallError, output_tail
from openmwaa.runtime.packages import required_packages
from openmwaa.runtime.versions import major, version_tuple

#: Written last; its presence is what "installed" means.
INSTALLED_MARKER: Final = ".openmwaa-installed"
#: The shipped constraints plus ``pip freeze`` of the runtime: the constraints of an environment's
#: requirements.txt.
CONSTRAINTS_FILE: Final = "openmwaa-constraints.txt"
#: Bumped whenever what goes into a runtime changes: part of the directory name, so a changed
#: recipe gets a fresh runtime while environments still running from the old one keep it.
#: 3: installed against the shipped constraints (runtimes of recipe 2 resolved today's releases).
#: 4: MWAA's package set (the Amazon provider and the rest of :mod:`openmwaa.runtime.packages`).
#: 5: MWAA's versions (constraints resolved against MWAA's image, :mod:`openmwaa.runtime.mwaa_image`).
RECIPE: Final = 5
INSTALL_TIMEOUT: Final = 1800.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Runtime:
    version: str
    major: int
    root: Path
    python: Path
    bin_dir: Path
    #: ``3.11``: the Python the runtime was built with ("" where unknown).
    python_tag: str = ""

    @property
    def constraints(self) -> Path:
        return self.root / CONSTRAINTS_FILE

    def airflow_command(self, *args: str) -> list[str]:
        """``python -m airflow ...``: works even if the venv's script shebangs are stale."""
        return [str(self.python), "-m", "airflow", *args]


#: uv's finder reads ``sysconfig``, whose first use in a process sets it up without a lock: two
#: threads finding uv at once (two RuntimeManagers built side by side) could see ``EXE`` as None.
_FIND_UV_LOCK: Final = threading.Lock()


def find_uv() -> str | None:
    """uv from the ``uv`` package openmwaa depends on, else from PATH; safe from several threads."""
    with _FIND_UV_LOCK:
        try:
            from uv import find_uv_bin

            return str(find_uv_bin())
        except (ImportError, FileNotFoundError):
            return shutil.which("uv")


class RuntimeManager:
    def __init__(self, cache_dir: Path, python: str = sys.executable, *, uv: str | None = None) -> None:
        self._cache_dir = Path(cache_dir)
        self._python = python
        self._uv = uv if uv is not None else find_uv()
        self._python_tag: str | None = None

    @property
    def cache_dir(self) -> Path:
        return self._cache_dir

    def python_tag(self) -> str:
        """``3.11`` for the interpreter runtimes are built with."""
        if self._python_tag is None:
            if Path(self._python).resolve() == Path(sys.executable).resolve():
                self._python_tag = f"{sys.version_info[0]}.{sys.version_info[1]}"
            else:
                out = _run(
                    [self._python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=60
                )
                self._python_tag = out.strip()
        return self._python_tag

    def path_for(self, version: str) -> Path:
        version_tuple(version)  # refuse anything that is not X.Y.Z before it reaches a path
        return self._cache_dir / f"airflow-{version}-py{self.python_tag()}-r{RECIPE}"

    def installed(self, version: str) -> Runtime | None:
        root = self.path_for(version)
        if not (root / INSTALLED_MARKER).is_file():
            return None
        return _runtime_at(version, root)

    def installed_runtimes(self) -> list[Runtime]:
        """Every complete runtime in the cache (any version)."""
        found = []
        for marker in sorted(self._cache_dir.glob(f"airflow-*/{INSTALLED_MARKER}")):
            version = marker.parent.name.split("-")[1]
            try:
                found.append(_runtime_at(version, marker.parent))
            except ValueError:
                continue
        return found

    def ensure(self, version: str, progress: Progress = lambda _msg: None) -> Runtime:
        """The runtime for ``version``, installing it first if needed (blocking)."""
        try:
            version_tuple(version)
        except ValueError as exc:
            raise RuntimeInstallError(str(exc)) from exc
        runtime = self.installed(version)
        if runtime is not None:
            return runtime
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        root = self.path_for(version)
        with _file_lock(self._cache_dir / f".{root.name}.lock"):
            runtime = self.installed(version)  # another process finished while we waited
            if runtime is not None:
                return runtime
            progress(f"Installing Apache Airflow {version} (first use of this version)")
            self._build(version, root)
            progress(f"Apache Airflow {version} installed")
        runtime = self.installed(version)
        if runtime is None:  # pragma: no cover - the build either renamed the dir or raised
            raise RuntimeInstallError(f"Apache Airflow {version} did not install into {root}.")
        return runtime

    # Building ------------------------------------------------------------------------------

    def _build(self, version: str, root: Path) -> None:
        pins = self._shipped_constraints(version)
        staging = root.with_name(f".tmp-{root.name}-{uuid.uuid4().hex[:8]}")
        try:
            python = self._create_venv(staging)
            packages = required_packages(version)
            try:
                # Compiled now, once: processes must not each compile Airflow at start-up (and
                # cannot cache it when PYTHONDONTWRITEBYTECODE is set).
                self._pip(python, "install", *self._compile_flag(), "-c", str(pins), *packages)
                frozen = self._pip(python, "freeze")
            except RuntimeInstallError as exc:
                raise RuntimeInstallError(
                    f"Could not install apache-airflow=={version} with Python {self.python_tag()}: "
                    f"{exc.message}"
                ) from exc
            (staging / CONSTRAINTS_FILE).write_text(requirements_constraints(pins.read_text(), frozen))
            (staging / INSTALLED_MARKER).write_text(version + "\n")
            if root.exists():  # left over from an interrupted older layout: never complete
                shutil.rmtree(root)
            os.rename(staging, root)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _shipped_constraints(self, version: str) -> Path:
        python = self.python_tag()
        pins = constraints_file(version, python)
        if pins is None:
            have = shipped_pythons(version)
            raise RuntimeInstallError(
                f"Apache Airflow {version} cannot run on Python {python}: openmwaa has its constraints "
                f"for Python {', '.join(have) if have else '(none)'} only. Run openmwaa with one of those."
            )
        return pins

    def _create_venv(self, target: Path) -> Path:
        if self._uv:
            _run([self._uv, "venv", "--quiet", "--relocatable", "-p", self._python, str(target)])
        else:
            _run([self._python, "-m", "venv", str(target)])
        return target / "bin" / "python"

    def _compile_flag(self) -> tuple[str, ...]:
        return ("--compile-bytecode",) if self._uv else ()

    def _pip(self, python: Path, *args: str) -> str:
        if self._uv:
            return _run([self._uv, "pip", *args, "--python", str(python)], timeout=INSTALL_TIMEOUT)
        return _run([str(python), "-m", "pip", "--disable-pip-version-check", *args], timeout=INSTALL_TIMEOUT)


def requirements_constraints(shipped: str, frozen: str) -> str:
    """What pins a requirements.txt: every shipped pin, then what the runtime has beyond them.

    Only ``name==version`` lines of the freeze count (editable or local lines cannot be
    constraints); installed versions agree with the shipped pins, which they were installed with.
    """
    pins = parse_pins(shipped)
    lines = [f"{name}=={version}" for name, version in pins.items()]
    for line in frozen.splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("-") and normalize(name) not in pins:
            lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def _runtime_at(version: str, root: Path) -> Runtime:
    return Runtime(
        version=version,
        major=major(version),
        root=root,
        python=root / "bin" / "python",
        bin_dir=root / "bin",
        python_tag=root.name.split("-py", 1)[1].split("-", 1)[0] if "-py" in root.name else "",
    )


def _run(argv: list[str], timeout: float = 600.0) -> str:
    """Run a tool; its stdout, or RuntimeInstallError with the tail of what it said."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeInstallError(f"{Path(argv[0]).name} took longer than {timeout:.0f} s.") from exc
    except OSError as exc:
        raise RuntimeInstallError(f"Could not run {argv[0]}: {exc.strerror}") from exc
    if done.returncode != 0:
        raise RuntimeInstallError(output_tail(done.stderr or done.stdout) or f"exit code {done.returncode}")
    return done.stdout.decode("utf-8", errors="replace")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # flock locks belong to the open file description, so two threads of one process exclude
    # each other as well as two processes do.
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
