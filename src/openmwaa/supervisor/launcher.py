"""Starting and stopping one environment's component processes: the runner's process plumbing.

:class:`ProcessLauncher` is what the runner needs; :class:`LocalLauncher` does it with local
child processes and pid files. Tests pass a fake, so crash loops, restarts and hang handling
run in milliseconds without Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from openmwaa.logs.groups import DAG_PROCESSOR_LEVEL_VARIABLE, LEVEL_VARIABLE
from openmwaa.supervisor import pidfiles
from openmwaa.supervisor.components import ComponentSpec
from openmwaa.supervisor.group import ProcessHandle
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.process import ChildProcess, spawn, stop_all
from openmwaa.supervisor.reaper import Reaper
from openmwaa.supervisor.startup_priority import BACKGROUND_NICE, set_autogroup_nice
from openmwaa.supervisor.task_interrupt import interrupt_tasks


class ProcessLauncher(Protocol):
    def spawn(self, component: ComponentSpec, prepared: PreparedEnvironment, now: float) -> ProcessHandle:
        """Start one replica with the prepared environment's runtime and configuration."""

    def stop(self, handles: Sequence[ProcessHandle], grace: float) -> None:
        """End the processes (and whatever they started): SIGTERM, then SIGKILL after ``grace``."""

    def interrupt_tasks(self, handles: Sequence[ProcessHandle], grace: float) -> None:
        """Celery workers replaced FORCEDly: end the tasks they run so that Airflow records it
        (SIGTERM, then SIGKILL to the tasks after ``grace``; see task_interrupt)."""

    def end_leftovers(self, home: Path) -> None:
        """End every process an earlier openmwaa started for the environment in ``home``."""

    def set_background(self, handle: ProcessHandle, background: bool) -> bool:
        """Give a process less CPU while the web server starts (see startup_priority); False if not."""


def component_env(component: ComponentSpec, env: Mapping[str, str]) -> Mapping[str, str]:
    """``env``, with the DAG processor's own log level (DagProcessingLogs) for that process."""
    level = env.get(DAG_PROCESSOR_LEVEL_VARIABLE)
    if component.kind != "dag-processor" or level is None:
        return env
    return {**env, LEVEL_VARIABLE: level}


class LocalLauncher:
    """Child processes of this openmwaa, each recorded in a pid file under ``<home>/run`` and,
    given a ``reaper``, with the reaper (which ends them if openmwaa dies without doing so)."""

    def __init__(self, reaper: Reaper | None = None) -> None:
        self._run_dirs: dict[int, Path] = {}
        self._reaper = reaper

    def spawn(self, component: ComponentSpec, prepared: PreparedEnvironment, now: float) -> ProcessHandle:
        home = prepared.spec.home
        child = spawn(
            component.name,
            component.argv,
            env=component_env(component, prepared.env_for(component.serves_api, component.kind)),
            cwd=home,
            log_path=home / "logs" / f"{component.name}.log",
            started_at=now,
            shim_python=str(prepared.runtime.python),
            user=prepared.user,
        )
        run_dir = home / "run"
        pidfiles.write_pidfile(run_dir, pidfiles.PidRecord(component.name, child.pid, child.start_ticks))
        self._run_dirs[child.pid] = run_dir
        if self._reaper is not None:
            self._reaper.watch(child)
        return child

    def stop(self, handles: Sequence[ProcessHandle], grace: float) -> None:
        children = [h for h in handles if isinstance(h, ChildProcess)]
        stop_all(children, grace=grace)
        for child in children:
            run_dir = self._run_dirs.pop(child.pid, None)
            if run_dir is not None:
                pidfiles.remove_pidfile(run_dir, child.name)
            if self._reaper is not None:
                self._reaper.forget(child)

    def interrupt_tasks(self, handles: Sequence[ProcessHandle], grace: float) -> None:
        interrupt_tasks([h for h in handles if isinstance(h, ChildProcess)], grace)

    def end_leftovers(self, home: Path) -> None:
        pidfiles.kill_orphans(home / "run")

    def set_background(self, handle: ProcessHandle, background: bool) -> bool:
        if not isinstance(handle, ChildProcess) or handle.poll() is not None:
            return False  # reaped: the pid may no longer be this process's
        return set_autogroup_nice(handle.pid, BACKGROUND_NICE if background else 0)
