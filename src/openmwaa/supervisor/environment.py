"""One environment's supervisor: a thread that owns its processes and reconciles them.

Commands (create, update, resume, delete, shutdown) arrive on a queue; the thread handles
them one at a time and, between commands, compares what should run with what does:
crashed components restart with exponential backoff, and a crash loop makes the
environment UNAVAILABLE until it is healthy again. Every process is started from this
one thread, which lives as long as the environment's processes do (PR_SET_PDEATHSIG is
tied to the thread that forked).
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from openmwaa.runtime import plugins, requirements
from openmwaa.runtime.airflow_config import Ports
from openmwaa.runtime.errors import EnvironmentSetupError
from openmwaa.runtime.installer import RuntimeManager
from openmwaa.supervisor import pidfiles, postgres
from openmwaa.supervisor.backoff import RestartPolicy
from openmwaa.supervisor.components import ComponentSpec, components_for, components_to_restart
from openmwaa.supervisor.group import ComponentGroup, Crash, ProcessHandle
from openmwaa.supervisor.health import HealthProbe, HealthReport
from openmwaa.supervisor.loopback_ports import allocate_ports, release_ports
from openmwaa.supervisor.prepare import (
    PreparedEnvironment,
    initialize_database,
    migrate_database,
    prepare_environment,
)
from openmwaa.supervisor.process import ChildProcess, log_tail, spawn, stop_all
from openmwaa.supervisor.spec import EnvironmentEvent, EnvironmentSpec, EventKind
from openmwaa.supervisor.startup_priority import BACKGROUND_NICE, set_autogroup_nice
from openmwaa.supervisor.watchdog import HangWatch

log = logging.getLogger(__name__)

#: How often Airflow's health endpoint is asked while components start: a probe costs well under
#: a millisecond of CPU, and every second saved here is a second sooner AVAILABLE.
HEALTH_INTERVAL = 0.25
RECOVERY_CHECK_INTERVAL = 5.0
#: How often an AVAILABLE environment's health is checked for hung components.
LIVENESS_CHECK_INTERVAL = 15.0
#: A hung component gets this long to end on SIGTERM before SIGKILL.
HUNG_STOP_GRACE = 5.0
STOP_GRACE = 20.0


@dataclass(frozen=True)
class Create:
    spec: EnvironmentSpec


@dataclass(frozen=True)
class Update:
    spec: EnvironmentSpec
    previous: EnvironmentSpec


@dataclass(frozen=True)
class Resume:
    spec: EnvironmentSpec


@dataclass(frozen=True)
class Delete:
    home: Path
    database_url: str | None


@dataclass(frozen=True)
class Shutdown:
    pass


Command = Create | Update | Resume | Delete | Shutdown


class StartFailure(Exception):
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


class Interrupted(Exception):
    """A delete or shutdown arrived while a long step was under way."""


class EnvironmentRunner:
    def __init__(
        self,
        key: str,
        *,
        runtimes: RuntimeManager,
        emit: Callable[[EnvironmentEvent], None],
        start_timeout: float,
        clock: Callable[[], float],
        policy: RestartPolicy | None = None,
        probe: Callable[[str, int], HealthReport] | None = None,
        tick: float = 1.0,
        hang_timeout: float = 0.0,
    ) -> None:
        self.key = key
        self._runtimes = runtimes
        self._emit_event = emit
        self._start_timeout = start_timeout
        self._clock = clock
        self._own_probe: HealthProbe | None = None
        if probe is None:
            probe = self._own_probe = HealthProbe()
        self._probe = probe
        self._tick = tick
        self._commands: queue.Queue[Command] = queue.Queue()
        self._interrupt = threading.Event()
        self._group = ComponentGroup(self._spawn, self._stop_handles, policy)
        self._prepared: PreparedEnvironment | None = None
        self._endpoint: str | None = None
        self._major: int | None = None
        self._unavailable = False
        self._next_recovery_check = 0.0
        self._hangs = HangWatch(hang_timeout)
        self._next_liveness_check = 0.0
        self._thread = threading.Thread(target=self._run, name=f"openmwaa-env:{key}", daemon=True)
        self.finished = threading.Event()

    # Called from other threads -----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, command: Command) -> None:
        if isinstance(command, Delete | Shutdown):
            self._interrupt.set()
        self._commands.put(command)

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def endpoint(self) -> str | None:
        return self._endpoint

    def airflow_major(self) -> int | None:
        return self._major

    def prepared(self) -> PreparedEnvironment | None:
        return self._prepared

    # The loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    command: Command | None = self._commands.get(timeout=self._tick)
                except queue.Empty:
                    command = None
                if isinstance(command, Shutdown):
                    self._stop_everything()
                    return
                if isinstance(command, Delete):
                    self._delete(command)
                    return
                if command is not None:
                    self._handle(command)
                self._reconcile()
        finally:
            if self._own_probe is not None:
                self._own_probe.close()
            self.finished.set()

    def _handle(self, command: Create | Update | Resume) -> None:
        try:
            if isinstance(command, Create):
                self._create(command.spec)
            elif isinstance(command, Update):
                self._update(command.spec, command.previous)
            else:
                self._resume(command.spec)
        except Interrupted:
            log.info("environment %s: interrupted", self.key)
        except Exception as exc:  # a bug must not kill the thread (and with it the processes)
            log.exception("environment %s: unexpected error", self.key)
            kind: EventKind = "create_failed" if isinstance(command, Create) else "update_failed"
            if isinstance(command, Resume):
                kind = "unavailable"
            self._emit(kind, f"Internal error while starting Airflow: {exc}", "INTERNAL_ERROR")

    # Lifecycle steps ---------------------------------------------------------------------

    def _create(self, spec: EnvironmentSpec) -> None:
        deadline = self._clock() + self._start_timeout
        try:
            self._stop_everything()
            pidfiles.kill_orphans(spec.home / "run")
            prepared = self._prepare(spec, self._new_ports())
            self._progress("Creating the Airflow metadata database")
            initialize_database(prepared, timeout=self._remaining(deadline))
            self._launch(prepared, deadline)
        except (EnvironmentSetupError, StartFailure) as exc:
            self._stop_everything()
            self._emit("create_failed", exc.message, exc.error_code)
            return
        self._became_available(prepared)

    def _resume(self, spec: EnvironmentSpec) -> None:
        deadline = self._clock() + self._start_timeout
        try:
            self._stop_everything()
            pidfiles.kill_orphans(spec.home / "run")
            prepared = self._prepare(spec, self._new_ports())
            if prepared.spec.database_url is None and not (spec.home / "airflow.db").exists():
                initialize_database(prepared, timeout=self._remaining(deadline))
        except EnvironmentSetupError as exc:
            self._emit("unavailable", exc.message, exc.error_code)
            return
        try:
            self._launch(prepared, deadline)
        except StartFailure as exc:
            # Keep what started: the reconcile loop restarts the rest and reports recovery.
            self._prepared = prepared
            self._endpoint = prepared.base_url
            self._mark_unavailable(exc.error_code, exc.message)
            return
        self._became_available(prepared)

    def _update(self, spec: EnvironmentSpec, previous: EnvironmentSpec) -> None:
        deadline = self._clock() + self._start_timeout
        old = self._prepared
        if old is None:
            pidfiles.kill_orphans(spec.home / "run")
        try:
            new = self._prepare(spec, old.ports if old else self._new_ports())
        except EnvironmentSetupError as exc:
            # Nothing was touched: what ran before runs on.
            self._emit("update_failed", exc.message, exc.error_code)
            if old is None:
                self._restore(previous, None)
            return
        specs = components_for(new.runtime, new.ports.api)
        if old is None:
            restart = [c.name for c in specs]
        else:
            same = old.runtime.root == new.runtime.root
            restart = components_to_restart(old.env, new.env, specs, same_runtime=same)
            if old.web_env != new.web_env:  # only what serves the API reads it
                restart += [c.name for c in specs if c.serves_api and c.name not in restart]
        if old is not None and not restart:
            self._became_available(new)
            return
        self._progress(f"Restarting {', '.join(restart)}")
        version_changed = old is None or old.runtime.version != new.runtime.version
        backup = None
        try:
            self._group.stop(None if version_changed else restart)
            if version_changed and old is not None:
                backup = _backup_sqlite(spec.home)
                migrate_database(new, timeout=self._remaining(deadline))
            self._launch(new, deadline, only=None if version_changed else restart)
        except (EnvironmentSetupError, StartFailure) as exc:
            self._stop_everything()
            if backup is not None:
                shutil.copy2(backup, spec.home / "airflow.db")
            self._restore(previous, exc)
            return
        requirements.remove_other_requirements(spec.home, new.site_dir)
        plugins.remove_other_plugins(spec.home, new.plugins_dir)
        self._became_available(new)

    def _restore(self, previous: EnvironmentSpec, cause: EnvironmentSetupError | StartFailure | None) -> None:
        """Bring ``previous`` back after a failed update; update_failed says why the update failed."""
        if cause is not None:
            self._emit("update_failed", cause.message, cause.error_code)
        deadline = self._clock() + self._start_timeout
        try:
            prepared = self._prepare(previous, self._prepared.ports if self._prepared else self._new_ports())
            self._launch(prepared, deadline)
        except (EnvironmentSetupError, StartFailure) as exc:
            self._stop_everything()
            self._mark_unavailable(
                exc.error_code, f"The previous configuration did not start again either: {exc.message}"
            )
            return
        self._became_available(prepared)

    def _delete(self, command: Delete) -> None:
        self._stop_everything()
        try:
            pidfiles.kill_orphans(command.home / "run")
            if command.database_url and postgres.is_postgres(command.database_url):
                python = self._any_runtime_python()
                if python is not None:
                    postgres.drop_database(python, command.database_url)
            if command.home.exists():
                shutil.rmtree(command.home)
        except (OSError, EnvironmentSetupError) as exc:
            message = exc.message if isinstance(exc, EnvironmentSetupError) else str(exc)
            self._emit("delete_failed", message, "DELETE_FAILED")
            return
        finally:
            self.release()
        self._emit("deleted", "")

    # Starting and watching ---------------------------------------------------------------

    def _prepare(self, spec: EnvironmentSpec, ports: Ports) -> PreparedEnvironment:
        self._check_interrupt()
        prepared = prepare_environment(spec, self._runtimes, ports, self._progress)
        self._check_interrupt()
        return prepared

    def _launch(self, prepared: PreparedEnvironment, deadline: float, only: list[str] | None = None) -> None:
        """Start components and wait until Airflow reports every one healthy."""
        self._check_interrupt()
        self._prepared = prepared
        self._major = prepared.runtime.major
        self._progress("Starting Airflow components")
        specs = components_for(prepared.runtime, prepared.ports.api)
        for stale in prepared.spec.home.glob("airflow-*.pid"):  # Airflow 2 refuses to start beside one
            stale.unlink(missing_ok=True)
        chosen = [s for s in specs if only is None or s.name in only]
        self._group.start(chosen, self._clock())
        self._endpoint = prepared.base_url
        waiting = self._web_server_first(chosen)
        try:
            self._wait_healthy(prepared, deadline)
        finally:
            for handle in waiting:
                if handle.poll() is None:  # not reaped: the pid is still this process's
                    set_autogroup_nice(handle.pid, 0)

    def _web_server_first(self, started: Sequence[ComponentSpec]) -> list[ProcessHandle]:
        """Lower the others' CPU share while the web server starts (see startup_priority)."""
        if not any(s.serves_api for s in started):
            return []
        running = self._group.running
        handles = [running[s.name] for s in started if not s.serves_api and s.name in running]
        return [h for h in handles if set_autogroup_nice(h.pid, BACKGROUND_NICE)]

    def _wait_healthy(self, prepared: PreparedEnvironment, deadline: float) -> None:
        while True:
            for name, code in self._group.exited():
                handle = self._group.running[name]
                raise StartFailure(
                    "COMPONENT_CRASHED",
                    f"Airflow {name} exited with code {code} while starting. "
                    f"End of {handle.log_path}:\n{log_tail(handle.log_path)}",
                )
            report = self._probe(prepared.base_url, prepared.runtime.major)
            if report.healthy:
                return
            if self._clock() >= deadline:
                raise StartFailure(
                    "STARTUP_TIMEOUT",
                    f"Airflow did not become healthy within {self._start_timeout:.0f} s ({report.detail}). "
                    f"Component logs are in {prepared.spec.home / 'logs'}.",
                )
            if self._interrupt.wait(HEALTH_INTERVAL):
                raise Interrupted

    def _reconcile(self) -> None:
        if self._prepared is None or self._interrupt.is_set():
            return
        now = self._clock()
        for crash in self._group.reconcile(now):
            self._on_crash(crash)
        if self._unavailable and now >= self._next_recovery_check and self._group.all_running():
            self._next_recovery_check = now + RECOVERY_CHECK_INTERVAL
            if self._probe(self._prepared.base_url, self._prepared.runtime.major).healthy:
                self._unavailable = False
                self._emit("available", "Airflow is healthy again")
        elif not self._unavailable and self._hangs.enabled and now >= self._next_liveness_check:
            self._next_liveness_check = now + LIVENESS_CHECK_INTERVAL
            self._check_liveness(self._prepared, now)

    def _check_liveness(self, prepared: PreparedEnvironment, now: float) -> None:
        """Restart a component Airflow has reported failing for the hang timeout without a break."""
        if not self._group.all_running():
            self._hangs.reset()  # a restart is under way: its start-up is not a hang
            return
        report = self._probe(prepared.base_url, prepared.runtime.major)
        running = self._group.running
        for name in self._hangs.observe(report.failing, now):
            handle = running.get(name)
            if not isinstance(handle, ChildProcess):
                continue
            log.warning(
                "environment %s: Airflow %s is running but has not been healthy for %.0f s (%s); "
                "restarting it",
                self.key,
                name,
                self._hangs.timeout,
                report.detail,
            )
            # Its exit is then handled as a crash: restarted with backoff, counted towards a
            # crash loop (UNAVAILABLE) if it keeps happening.
            stop_all([handle], grace=HUNG_STOP_GRACE)

    def _on_crash(self, crash: Crash) -> None:
        verdict = crash.verdict
        log.warning(
            "environment %s: %s exited with code %s; restarting in %.0f s",
            self.key,
            crash.component,
            crash.exit_code,
            verdict.delay,
        )
        if verdict.crash_loop and not self._unavailable:
            self._mark_unavailable(
                "COMPONENT_CRASHED",
                f"Airflow {crash.component} keeps crashing ({verdict.recent} times within "
                f"{self._group.policy.window:.0f} s, last exit code {crash.exit_code}). "
                f"End of {crash.log_path}:\n{log_tail(crash.log_path)}",
            )

    def _mark_unavailable(self, code: str, message: str) -> None:
        self._unavailable = True
        self._hangs.reset()
        self._next_recovery_check = self._clock() + RECOVERY_CHECK_INTERVAL
        self._emit("unavailable", message, code)

    def _became_available(self, prepared: PreparedEnvironment) -> None:
        self._prepared = prepared
        self._major = prepared.runtime.major
        self._endpoint = prepared.base_url
        self._unavailable = False
        self._hangs.reset()
        self._next_liveness_check = self._clock() + LIVENESS_CHECK_INTERVAL
        self._emit("available", "")

    # Process plumbing --------------------------------------------------------------------

    def _spawn(self, component: ComponentSpec, now: float) -> ProcessHandle:
        prepared = self._prepared
        assert prepared is not None  # start() is only reached with a prepared environment
        home = prepared.spec.home
        child = spawn(
            component.name,
            component.argv,
            env=prepared.env_for(component.serves_api),
            cwd=home,
            log_path=home / "logs" / f"{component.name}.log",
            started_at=now,
            shim_python=str(prepared.runtime.python),
        )
        pidfiles.write_pidfile(home / "run", pidfiles.PidRecord(component.name, child.pid, child.start_ticks))
        return child

    def _stop_handles(self, handles: Sequence[ProcessHandle]) -> None:
        children = [h for h in handles if isinstance(h, ChildProcess)]
        stop_all(children, grace=STOP_GRACE)
        if self._prepared is not None:
            for child in children:
                pidfiles.remove_pidfile(self._prepared.spec.home / "run", child.name)

    def _stop_everything(self) -> None:
        self._group.stop(None)
        self._endpoint = None

    def _new_ports(self) -> Ports:
        if self._prepared is not None:
            return self._prepared.ports
        api, worker_log, trigger_log = allocate_ports(3)
        return Ports(api=api, worker_log=worker_log, trigger_log=trigger_log)

    def release(self) -> None:
        if self._prepared is not None:
            p = self._prepared.ports
            release_ports([p.api, p.worker_log, p.trigger_log])

    def _any_runtime_python(self) -> Path | None:
        if self._prepared is not None:
            return self._prepared.runtime.python
        found = self._runtimes.installed_runtimes()
        return found[0].python if found else None

    # Small helpers -----------------------------------------------------------------------

    def _remaining(self, deadline: float) -> float:
        left = deadline - self._clock()
        if left <= 0:
            raise StartFailure(
                "STARTUP_TIMEOUT", f"Airflow did not start within {self._start_timeout:.0f} s."
            )
        return left

    def _check_interrupt(self) -> None:
        if self._interrupt.is_set():
            raise Interrupted

    def _progress(self, message: str) -> None:
        self._emit("progress", message)

    def _emit(self, kind: EventKind, message: str, error_code: str | None = None) -> None:
        try:
            self._emit_event(EnvironmentEvent(self.key, kind, message, error_code))
        except Exception:  # the listener's bug must not stop the supervisor
            log.exception("environment %s: event listener failed on %s", self.key, kind)


def _backup_sqlite(home: Path) -> Path | None:
    """Copy airflow.db before a version upgrade migrates it, so a failed upgrade can roll back."""
    db = home / "airflow.db"
    if not db.exists():
        return None
    backup = home / "airflow.db.before-upgrade"
    shutil.copy2(db, backup)
    return backup
